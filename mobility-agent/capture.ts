import { EventEmitter } from "node:events";
import { isPromise, Wake } from "../common/async/index.js";
import { isZero } from "../common/bytes/index.js";
import type { Logger } from "../common/logger.js";
import { isMarker } from "../common/replica/index.js";
import { CaptureMode, WriteKind, type WriteRecord } from "../proto/index.js";
import type { DirtyBitmap } from "./dirty-bitmap.js";
import type { DiskBackend } from "./disk-backend.js";
import type { SequenceCounter } from "./sequence-counter.js";
import { WriteQueue } from "./write-queue.js";

export interface CaptureDisk {
  index: number;
  backend: DiskBackend;
  bitmap: DirtyBitmap;
}

export interface CaptureSettings {
  /** Payload bytes kept in memory (data mode) before capture keeps only offsets (metadata mode). */
  memoryBudgetBytes: number;
  /** Memory for metadata-mode records before capture falls back to the dirty-block bitmap. */
  metadataBudgetBytes: number;
  logger: Logger;
}

/** What one metadata-mode record costs in memory (the record object and its queue slot), roughly. */
export const METADATA_RECORD_BYTES = 128;

/** Pending changes above this share of the machine's disk bytes need a checksum resync (ASR: 50%). */
const RESYNC_PENDING_SHARE = 0.5;

export interface CaptureEvents {
  mode: [mode: CaptureMode, reason: string];
  "resync-required": [reason: string];
  "resync-cleared": [];
}

/**
 * Turns disk writes into the machine's sequenced record stream. Under memory pressure it degrades
 * like ASR's agent: data mode (payloads kept) → metadata mode (offset and length kept, the bytes
 * are read from the disk when the record is sent) → bitmap mode (dirty blocks only, sent again
 * from the disk once the process server is reachable). The one piece of state every other part
 * (exports, replication client, sync, commands) goes through.
 */
export class Capture extends EventEmitter<CaptureEvents> {
  mode: CaptureMode = CaptureMode.CAPTURE_MODE_DATA;
  /** Write payload bytes queued for the process server since start (live writes, sync and drain). */
  capturedBytes = 0;
  /** Writes are sequenced only once the machine is protected (an assignment arrived). */
  armed = false;
  /** Highest sequence the process server confirmed durable. */
  ackedSequence = 0;
  /** Payload bytes acknowledged by the process server since start. */
  bytesAcked = 0;
  resyncRequired = false;
  resyncReason = "";
  /** Wakes the sender (new records, acks, mode changes). */
  readonly changed = new Wake();

  private readonly queue = new WriteQueue();
  private readonly queued = new WeakSet<WriteRecord>();
  private readonly droppedToBitmap = new WeakSet<WriteRecord>();
  /** Queued DATA records without their payload yet (metadata mode): read from the disk when sent. */
  private readonly unread = new Set<WriteRecord>();
  /** Milliseconds spent in each mode before the current one, and when the current one began. */
  private readonly modeMs = new Map<CaptureMode, number>();
  private modeSinceMs = Date.now();
  private readonly recordWaiters = new Map<WriteRecord, Array<() => void>>();
  private cleanWaiters: Array<() => void> = [];
  private blockedReason: string | undefined;
  private streamOpen = false;
  private drain?: { abort: AbortController; done: Promise<void> };
  /** After persistForStop: late writes (a page-blob write still queued) only mark the bitmap. */
  private stopped = false;
  private readonly diskList: CaptureDisk[];
  /** Highest sequence this process ever put on a stream. */
  private highestSent = 0;
  /** Highest sequence a previous run of the agent may have sent (the counter file at start). */
  private readonly startupLast: number;
  /** The process server's durable sequence at the last open; undefined before the first. */
  private confirmedDurable: number | undefined;

  constructor(
    disks: readonly CaptureDisk[],
    private readonly counter: SequenceCounter,
    private readonly settings: CaptureSettings,
  ) {
    super();
    this.diskList = [...disks];
    this.startupLast = counter.last;
    // Dirty blocks left by the previous run (a clean stop keeps its unacknowledged queue there).
    if (disks.some((d) => d.bitmap.dirtyBlocks > 0)) this.mode = CaptureMode.CAPTURE_MODE_BITMAP;
  }

  // ---- disks -----------------------------------------------------------------------------------

  get disks(): readonly CaptureDisk[] {
    return this.diskList;
  }

  private get totalDiskBytes(): number {
    return this.diskList.reduce((sum, d) => sum + d.backend.size, 0);
  }

  /** A disk added after protection: captured from now on (its initial copy is a sync of it alone). */
  addDisk(disk: CaptureDisk): void {
    if (this.diskList.some((d) => d.index === disk.index)) throw new Error(`disk ${disk.index} is already captured`);
    this.diskList.push(disk);
    this.diskList.sort((a, b) => a.index - b.index);
  }

  /** Stops capturing a disk; records already queued for it still go out. */
  removeDisk(index: number): void {
    const at = this.diskList.findIndex((d) => d.index === index);
    if (at >= 0) this.diskList.splice(at, 1);
  }

  // ---- writes ----------------------------------------------------------------------------------

  get writesBlockedReason(): string | undefined {
    return this.blockedReason;
  }

  blockWrites(reason: string): void {
    this.blockedReason = reason;
  }

  unblockWrites(): void {
    this.blockedReason = undefined;
  }

  /** Call right after the disk write, before anything else touches that disk. `data` is copied. */
  recordData(diskIndex: number, offset: number, data: Buffer): void {
    if (!this.armed) return;
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) {
      this.disk(diskIndex).bitmap.mark(offset, data.length);
    } else if (this.mode === CaptureMode.CAPTURE_MODE_METADATA) {
      this.unread.add(this.push(WriteKind.WRITE_KIND_DATA, diskIndex, offset, data.length, EMPTY));
    } else {
      this.push(WriteKind.WRITE_KIND_DATA, diskIndex, offset, data.length, Buffer.from(data));
    }
    this.afterCapture();
  }

  recordZero(diskIndex: number, offset: number, length: number): void {
    if (!this.armed || length === 0) return;
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) {
      this.disk(diskIndex).bitmap.mark(offset, length);
    } else {
      this.push(WriteKind.WRITE_KIND_ZERO, diskIndex, offset, length, EMPTY);
    }
    this.afterCapture();
  }

  /**
   * A block read by sync or the bitmap drain: queued as DATA, or ZERO when all zeros. In bitmap
   * mode it is marked dirty instead and goes out with the bitmap drain.
   */
  recordBlock(diskIndex: number, offset: number, data: Buffer, zero: boolean): WriteRecord | undefined {
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) {
      this.disk(diskIndex).bitmap.mark(offset, data.length);
      this.afterCapture();
      return undefined;
    }
    const record = zero
      ? this.push(WriteKind.WRITE_KIND_ZERO, diskIndex, offset, data.length, EMPTY)
      : this.push(WriteKind.WRITE_KIND_DATA, diskIndex, offset, data.length, data);
    // Sync and drain pace themselves with waitForRoom; only live writes can overrun the budget.
    this.afterCapture(false);
    return record;
  }

  /** An app-consistent tag at this point of the stream. */
  recordTag(tagName: string, consistencyGroup: string): WriteRecord {
    if (!this.armed) throw new Error("machine is not protected yet: no tag can be inserted");
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP || this.drain) {
      // Bitmap mode loses write order, so no point inside it is application-consistent.
      throw new Error("capture is in bitmap mode: app-consistent tags resume once the dirty blocks are sent");
    }
    const record = this.push(WriteKind.WRITE_KIND_TAG, 0, 0, 0, EMPTY);
    record.tagName = tagName;
    record.consistencyGroup = consistencyGroup;
    return record;
  }

  /**
   * Ends a disk's initial copy or resync in the stream: the process server makes its base point
   * here. Refused in bitmap mode (order is lost there); the caller waits for data mode and retries.
   */
  recordBase(diskIndex: number): WriteRecord | undefined {
    if (!this.armed) throw new Error("machine is not protected yet: no base can be marked");
    this.disk(diskIndex);
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP || this.drain) return undefined;
    return this.push(WriteKind.WRITE_KIND_BASE, diskIndex, 0, 0, EMPTY);
  }

  /** The record went to the dirty bitmap instead of the process server (a marker is then lost). */
  wasDropped(record: WriteRecord): boolean {
    return this.droppedToBitmap.has(record);
  }

  private push(kind: WriteKind, diskIndex: number, offset: number, length: number, data: Buffer): WriteRecord {
    const record: WriteRecord = {
      sequence: this.counter.take(),
      kind,
      diskIndex,
      offset,
      length,
      data,
      tagName: "",
      consistencyGroup: "",
      capturedAtMs: Date.now(),
      readAtSequence: 0,
    };
    this.queue.push(record);
    this.queued.add(record);
    this.capturedBytes += data.length;
    this.changed.notify();
    return record;
  }

  private afterCapture(checkBudget = true): void {
    if (this.stopped) {
      for (const d of this.disks) d.bitmap.persist();
      return;
    }
    if (checkBudget && this.mode === CaptureMode.CAPTURE_MODE_DATA && this.queue.memoryBytes > this.settings.memoryBudgetBytes) {
      this.enterMetadataMode("memory budget exceeded");
    }
    if (checkBudget && this.mode === CaptureMode.CAPTURE_MODE_METADATA && this.metadataBytes > this.settings.metadataBudgetBytes) {
      this.enterBitmapMode("metadata budget exceeded");
    }
    // ASR's rule is about failing delta replication: a slow but open stream is not a reason.
    if (!this.resyncRequired && !this.streamOpen && this.pendingBytes > this.totalDiskBytes * RESYNC_PENDING_SHARE) {
      this.requireResync("pending changes exceed 50% of disk size");
    }
  }

  // ---- the stream ------------------------------------------------------------------------------

  /** Unsent records for the next batch, within the window of unacknowledged bytes. */
  nextBatch(batchBytes: number, windowBytes: number): WriteRecord[] | undefined {
    const room = windowBytes - this.queue.inFlightBytes;
    if (room <= 0 && this.queue.inFlightBytes > 0) return undefined;
    const batch = this.queue.takeBatch(Math.max(1, Math.min(batchBytes, room)));
    if (batch?.length) this.highestSent = Math.max(this.highestSent, batch[batch.length - 1]!.sequence);
    return batch;
  }

  /**
   * Reads the payloads of the batch's metadata-mode records from the disk, now, just before they
   * are sent. Each carries the sequence the machine had reached at the read: its bytes may be
   * those of later writes (which follow in the stream anyway), and the process server marks the
   * recovery points this touches.
   */
  fill(batch: readonly WriteRecord[]): void | Promise<void> {
    const reads: Array<Promise<unknown>> = [];
    for (const r of batch) {
      if (!this.unread.delete(r)) continue;
      const d = this.disk(r.diskIndex);
      const read = d.backend.readThen(r.offset, r.length, (data) => {
        if (this.queued.has(r)) this.queue.payloadChanged(r.data.length, data.length);
        r.data = data;
        r.readAtSequence = this.counter.last;
      });
      if (isPromise(read)) reads.push(read);
    }
    if (reads.length === 0) {
      this.maybeLeaveMetadataMode();
      return;
    }
    return Promise.all(reads).then(() => this.maybeLeaveMetadataMode());
  }

  /**
   * The highest sequence the process server can hold from this agent: what this process sent,
   * what the server confirmed at the last open, or (before the first open) whatever the previous
   * run numbered. Anything above it came from another writer.
   */
  private get sentCeiling(): number {
    return Math.max(this.highestSent, this.confirmedDurable ?? this.startupLast);
  }

  /**
   * The process server holds everything through `durable`. Records at or below that this agent
   * sent are forgotten, the rest is resent; when our numbering runs ahead (payloads dropped to the
   * bitmap, a crash skipped reserved numbers) the queued records are renumbered from durable+1 —
   * the server holds none of those numbers, and the alternative is a sequence gap that forces a
   * full resync. A durable sequence above anything this agent sent means another writer used the
   * machine's numbers: the replica holds writes that are not ours, so nothing queued is dropped
   * and the machine needs a resync.
   */
  onOpened(durable: number): void {
    this.streamOpen = true;
    if (durable < this.ackedSequence) this.requireResync("process server lost acknowledged writes");
    const ceiling = this.sentCeiling;
    // A brand-new agent (no counter, never opened) has no history to disagree with.
    const fresh = this.confirmedDurable === undefined && this.startupLast === 0 && this.highestSent === 0;
    if (durable > ceiling && !fresh) {
      this.requireResync(`process server holds sequences ${ceiling + 1}..${durable} this agent never sent (another writer with this machine's identity?)`);
    }
    // Only what this agent sent can be acknowledged; unsent writes survive any durable number.
    this.acknowledge(Math.min(durable, ceiling));
    this.ackedSequence = durable;
    this.confirmedDurable = durable;
    this.queue.rewind();
    const expected = durable + 1;
    const first = this.queue.first;
    if (first && first.sequence !== expected) {
      this.settings.logger.info("renumbering queued writes after the process server's durable sequence", {
        from: first.sequence,
        to: expected,
      });
      this.counter.setNext(this.queue.renumberFrom(expected));
    } else if (!first && this.counter.next !== expected) {
      this.counter.setNext(expected);
    }
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) this.startDrain();
    this.changed.notify();
  }

  /**
   * False when the server acknowledged beyond what this agent sent: its numbering moved on without
   * us, so the stream must be reopened (renumbering after the server's durable sequence).
   */
  onAck(durable: number): boolean {
    const ceiling = this.sentCeiling;
    const inStep = durable <= ceiling;
    if (!inStep) {
      this.requireResync(`process server acknowledged sequence ${durable}, beyond the ${ceiling} this agent sent (another writer with this machine's identity?)`);
    }
    this.acknowledge(Math.min(durable, ceiling));
    if (durable > this.ackedSequence) this.ackedSequence = Math.min(durable, ceiling);
    this.maybeLeaveMetadataMode();
    this.maybeStartDrain();
    this.changed.notify();
    return inStep;
  }

  onStreamClosed(): void {
    this.streamOpen = false;
    this.changed.notify();
  }

  /** Periodic: persist dirty bitmaps; start the drain when the stream is up and nothing else will. */
  tick(): void {
    for (const d of this.disks) d.bitmap.persist();
    this.maybeStartDrain();
  }

  private acknowledge(durable: number): void {
    for (const r of this.queue.ackThrough(durable)) {
      this.queued.delete(r);
      this.unread.delete(r);
      this.bytesAcked += r.data.length;
      const waiters = this.recordWaiters.get(r);
      if (waiters) {
        this.recordWaiters.delete(r);
        for (const w of waiters) w();
      }
    }
  }

  // ---- capture modes ---------------------------------------------------------------------------

  /**
   * Keeps only offset and length from now on; the payloads of records not sent yet are dropped
   * too (they are read back from the disk when sent), so memory falls to what is in flight.
   */
  enterMetadataMode(reason: string): void {
    if (this.mode !== CaptureMode.CAPTURE_MODE_DATA) return;
    for (const r of this.queue.unsent()) {
      if (r.kind !== WriteKind.WRITE_KIND_DATA || this.unread.has(r)) continue;
      this.queue.payloadChanged(r.data.length, 0);
      r.data = EMPTY;
      this.unread.add(r);
    }
    this.setMode(CaptureMode.CAPTURE_MODE_METADATA, reason);
  }

  /** Back to data mode once every metadata-mode record was read and memory is half free again. */
  private maybeLeaveMetadataMode(): void {
    if (this.mode !== CaptureMode.CAPTURE_MODE_METADATA || this.unread.size > 0) return;
    if (this.queue.memoryBytes > this.settings.memoryBudgetBytes / 2) return;
    this.setMode(CaptureMode.CAPTURE_MODE_DATA, "metadata-mode writes sent, memory available");
  }

  /** Drops queued payloads into the dirty bitmap; new writes only mark their blocks. */
  enterBitmapMode(reason: string): void {
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) return;
    this.stopDrain();
    const { records, sent } = this.queue.drain();
    this.unread.clear();
    for (const r of records) {
      this.queued.delete(r);
      this.droppedToBitmap.add(r);
      if (!isMarker(r)) this.diskList.find((d) => d.index === r.diskIndex)?.bitmap.mark(r.offset, r.length);
      const waiters = this.recordWaiters.get(r);
      if (waiters) {
        this.recordWaiters.delete(r);
        this.cleanWaiters.push(...waiters);
      }
    }
    // Numbers that never left this process are free again; sent ones may still be acked.
    if (sent < records.length) this.counter.setNext(records[sent]!.sequence);
    this.setMode(CaptureMode.CAPTURE_MODE_BITMAP, reason);
    for (const d of this.disks) d.bitmap.persist();
  }

  private setMode(mode: CaptureMode, reason: string): void {
    const now = Date.now();
    this.modeMs.set(this.mode, (this.modeMs.get(this.mode) ?? 0) + (now - this.modeSinceMs));
    this.modeSinceMs = now;
    this.mode = mode;
    const level = mode === CaptureMode.CAPTURE_MODE_DATA ? "info" : "warn";
    this.settings.logger.log(level, "capture mode changed", { mode: CaptureMode[mode], reason });
    this.emit("mode", mode, reason);
    this.changed.notify();
  }

  private maybeStartDrain(): void {
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP && this.streamOpen && !this.drain) this.startDrain();
  }

  /** Back to data mode: re-read every dirty block with a fresh sequence, then clear the bitmap. */
  private startDrain(): void {
    if (this.drain) return;
    const abort = new AbortController();
    this.setMode(CaptureMode.CAPTURE_MODE_DATA, "process server reachable: sending dirty blocks");
    const done = this.runDrain(abort.signal)
      .catch((err: unknown) => {
        this.settings.logger.error("sending dirty blocks failed", { error: (err as Error).message });
        if (!abort.signal.aborted) this.enterBitmapMode("dirty block drain failed");
      })
      .finally(() => {
        if (this.drain?.abort === abort) this.drain = undefined;
      });
    this.drain = { abort, done };
  }

  private stopDrain(): void {
    this.drain?.abort.abort();
    this.drain = undefined;
  }

  private async runDrain(signal: AbortSignal): Promise<void> {
    let last: WriteRecord | undefined;
    let blocks = 0;
    for (const d of this.disks) {
      for (const block of d.bitmap.dirtyList()) {
        await this.waitForRoom(d.bitmap.blockBytes, signal);
        if (signal.aborted) return;
        if (!d.bitmap.isDirty(block)) continue;
        const offset = block * d.bitmap.blockBytes;
        // Checked again when the read runs: a queued read (page blob) may outlive the drain.
        const read = d.backend.readThen(offset, Math.min(d.bitmap.blockBytes, d.backend.size - offset), (data) => {
          if (signal.aborted || !d.bitmap.isDirty(block)) return undefined;
          d.bitmap.clearBlock(block);
          blocks++;
          return this.recordBlock(d.index, offset, data, isZero(data));
        });
        last = (isPromise(read) ? await read : read) ?? last;
        if (signal.aborted) return;
      }
    }
    if (last) await this.whenDurable(last, signal);
    if (signal.aborted || this.mode === CaptureMode.CAPTURE_MODE_BITMAP) return;
    for (const d of this.disks) d.bitmap.persist();
    this.settings.logger.info("dirty blocks sent, bitmap cleared", { blocks });
    this.resolveClean();
  }

  /** Everything dropped into the bitmap so far is now durable at the process server. */
  private resolveClean(): void {
    if (this.disks.some((d) => d.bitmap.dirtyBlocks > 0)) return;
    const waiters = this.cleanWaiters;
    this.cleanWaiters = [];
    for (const w of waiters) w();
  }

  // ---- waiting ---------------------------------------------------------------------------------

  /** Resolves when `bytes` more fit in the queue without crowding out live writes (half the budget). */
  async waitForRoom(bytes: number, signal?: AbortSignal): Promise<void> {
    while (!signal?.aborted && this.queue.memoryBytes > 0 && this.queue.memoryBytes + bytes > this.settings.memoryBudgetBytes / 2) {
      await this.changed.wait(signal);
    }
  }

  /** Resolves once `record` (or, if it was dropped, the bitmap that absorbed it) is durable. */
  whenDurable(record: WriteRecord, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      signal?.addEventListener("abort", () => resolve(), { once: true });
      if (this.queued.has(record)) {
        const list = this.recordWaiters.get(record) ?? [];
        list.push(resolve);
        this.recordWaiters.set(record, list);
      } else if (this.droppedToBitmap.has(record) && this.disks.some((d) => d.bitmap.dirtyBlocks > 0)) {
        this.cleanWaiters.push(resolve);
      } else {
        resolve();
      }
    });
  }

  /** Resolves once every write captured so far is durable at the process server. */
  async whenAllDurable(signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) return;
      const last = this.queue.last;
      if (last) {
        await this.whenDurable(last, signal);
      } else if (this.disks.some((d) => d.bitmap.dirtyBlocks > 0) || this.drain) {
        await new Promise<void>((resolve) => {
          this.cleanWaiters.push(resolve);
          signal?.addEventListener("abort", () => resolve(), { once: true });
        });
      } else {
        return;
      }
    }
  }

  // ---- sync and resync -------------------------------------------------------------------------

  /**
   * Before a full compare: dirty blocks are on the disks, which the sync reads anyway, so the
   * bitmap is cleared. Queued records stay: they are the latest writes, so whatever the compare
   * skips, the replica still ends up equal to the disk once they land.
   */
  resetForSync(): void {
    this.stopDrain();
    for (const d of this.disks) {
      d.bitmap.clearAll();
      d.bitmap.persist(true);
    }
    if (this.mode !== CaptureMode.CAPTURE_MODE_DATA) this.setMode(CaptureMode.CAPTURE_MODE_DATA, "sync started");
    this.changed.notify();
  }

  /** A completed sync made the replica whole again. */
  syncCompleted(): void {
    const wasRequired = this.resyncRequired;
    this.resyncRequired = false;
    this.resyncReason = "";
    if (wasRequired) this.emit("resync-cleared");
    this.resolveClean();
  }

  requireResync(reason: string): void {
    if (this.resyncRequired) return;
    this.resyncRequired = true;
    this.resyncReason = reason;
    this.settings.logger.warn("resync required", { reason });
    this.emit("resync-required", reason);
  }

  // ---- protection disabled ---------------------------------------------------------------------

  /**
   * Stops capturing and forgets everything replication-related: queued records, dirty blocks,
   * the process server's positions and any resync need. The next protection starts with a full
   * initial copy, numbered after whatever its process server then holds.
   */
  disarm(): void {
    this.armed = false;
    this.stopDrain();
    const { records } = this.queue.drain();
    this.unread.clear();
    for (const r of records) {
      this.queued.delete(r);
      const waiters = this.recordWaiters.get(r);
      this.recordWaiters.delete(r);
      for (const w of waiters ?? []) w();
    }
    for (const d of this.disks) {
      d.bitmap.clearAll();
      d.bitmap.persist(true);
    }
    this.ackedSequence = 0;
    this.confirmedDurable = undefined;
    this.resyncRequired = false;
    this.resyncReason = "";
    if (this.mode !== CaptureMode.CAPTURE_MODE_DATA) this.setMode(CaptureMode.CAPTURE_MODE_DATA, "protection disabled");
    this.resolveClean();
    this.changed.notify();
  }

  // ---- clean stop ------------------------------------------------------------------------------

  /** Keeps unacknowledged writes across a clean stop: their blocks go to the persisted bitmap. */
  persistForStop(): void {
    this.stopDrain();
    const { records } = this.queue.drain();
    this.unread.clear();
    for (const r of records) {
      if (!isMarker(r)) this.diskList.find((d) => d.index === r.diskIndex)?.bitmap.mark(r.offset, r.length);
    }
    for (const d of this.disks) d.bitmap.persist();
    this.counter.close();
    this.stopped = true;
    this.mode = CaptureMode.CAPTURE_MODE_BITMAP;
  }

  // ---- figures ---------------------------------------------------------------------------------

  /** Bytes of disk changed and not yet durable at the process server. */
  get pendingBytes(): number {
    return this.queue.changeBytes + this.disks.reduce((sum, d) => sum + d.bitmap.dirtyBytes, 0);
  }

  get memoryBytes(): number {
    return this.queue.memoryBytes;
  }

  /** Memory held by metadata-mode records (what the metadata budget limits). */
  get metadataBytes(): number {
    return this.unread.size * METADATA_RECORD_BYTES;
  }

  /** Seconds spent in `mode` since the capture started, the current stretch included. */
  secondsIn(mode: CaptureMode, now = Date.now()): number {
    const ms = (this.modeMs.get(mode) ?? 0) + (this.mode === mode ? now - this.modeSinceMs : 0);
    return ms / 1000;
  }

  get queuedRecords(): number {
    return this.queue.length;
  }

  get inFlightBytes(): number {
    return this.queue.inFlightBytes;
  }

  get lastSequence(): number {
    return this.counter.last;
  }

  get isStreamOpen(): boolean {
    return this.streamOpen;
  }

  get dirtyBlocks(): number {
    return this.disks.reduce((sum, d) => sum + d.bitmap.dirtyBlocks, 0);
  }

  /** Age of the oldest write not yet durable at the process server. */
  rpoSeconds(now = Date.now()): number {
    let oldest = this.queue.first?.capturedAtMs ?? Number.POSITIVE_INFINITY;
    for (const d of this.disks) if (d.bitmap.dirtySinceMs > 0) oldest = Math.min(oldest, d.bitmap.dirtySinceMs);
    return Number.isFinite(oldest) ? Math.max(0, now - oldest) / 1000 : 0;
  }

  private disk(index: number): CaptureDisk {
    const d = this.diskList.find((x) => x.index === index);
    if (!d) throw new Error(`no disk ${index}`);
    return d;
  }
}

const EMPTY = Buffer.alloc(0);
