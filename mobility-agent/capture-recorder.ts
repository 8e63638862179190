import { EventEmitter } from "node:events";
import { Wake } from "../common/async/index.js";
import type { Logger } from "../common/logger.js";
import { isMarker } from "../common/replica/index.js";
import { CaptureMode, WriteKind, type WriteRecord } from "../proto/index.js";
import type { DirtyBitmap } from "./dirty-bitmap.js";
import type { DiskBackend } from "./disk-backend.js";
import type { SequenceCounter } from "./sequence-counter.js";
import { PayloadSlab } from "./payload-slab.js";
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
 * The recording half of Capture: turns disk writes into sequenced records and degrades under
 * memory pressure like ASR's agent — data mode (payloads kept) → metadata mode (offset and length
 * kept, the bytes are read from the disk when the record is sent) → bitmap mode (dirty blocks only,
 * sent again from the disk once the process server is reachable). Capture adds the stream to the
 * process server, durability waits, sync and the lifecycle on top.
 */
export abstract class CaptureRecorder extends EventEmitter<CaptureEvents> {
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

  protected readonly queue = new WriteQueue();
  /** Live writes' payloads are copied here: the NBD request's bytes belong to the socket. */
  private readonly slab = new PayloadSlab();
  protected readonly queued = new WeakSet<WriteRecord>();
  protected readonly droppedToBitmap = new WeakSet<WriteRecord>();
  /** Queued DATA records without their payload yet (metadata mode): read from the disk when sent. */
  protected readonly unread = new Set<WriteRecord>();
  /** Milliseconds spent in each mode before the current one, and when the current one began. */
  private readonly modeMs = new Map<CaptureMode, number>();
  private modeSinceMs = Date.now();
  protected readonly recordWaiters = new Map<WriteRecord, Array<() => void>>();
  protected cleanWaiters: Array<() => void> = [];
  private blockedReason: string | undefined;
  protected streamOpen = false;
  protected drain?: { abort: AbortController; done: Promise<void> };
  /** After persistForStop: late writes (a page-blob write still queued) only mark the bitmap. */
  protected stopped = false;
  protected readonly diskList: CaptureDisk[];

  constructor(
    disks: readonly CaptureDisk[],
    protected readonly counter: SequenceCounter,
    protected readonly settings: CaptureSettings,
  ) {
    super();
    this.diskList = [...disks];
    // Dirty blocks left by the previous run (a clean stop keeps its unacknowledged queue there).
    if (disks.some((d) => d.bitmap.dirtyBlocks > 0)) this.mode = CaptureMode.CAPTURE_MODE_BITMAP;
  }

  /** Ends a bitmap drain in progress (the stream side runs it). */
  protected abstract stopDrain(): void;

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
      this.push(WriteKind.WRITE_KIND_DATA, diskIndex, offset, data.length, this.slab.copy(data));
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
   * mode it is marked dirty instead and goes out with the bitmap drain. `data` is copied.
   */
  recordBlock(diskIndex: number, offset: number, data: Buffer, zero: boolean): WriteRecord | undefined {
    if (this.mode === CaptureMode.CAPTURE_MODE_BITMAP) {
      this.disk(diskIndex).bitmap.mark(offset, data.length);
      this.afterCapture();
      return undefined;
    }
    const record = zero
      ? this.push(WriteKind.WRITE_KIND_ZERO, diskIndex, offset, data.length, EMPTY)
      : this.push(WriteKind.WRITE_KIND_DATA, diskIndex, offset, data.length, this.slab.copy(data));
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

  protected push(kind: WriteKind, diskIndex: number, offset: number, length: number, data: Buffer): WriteRecord {
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

  protected afterCapture(checkBudget = true): void {
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
  protected maybeLeaveMetadataMode(): void {
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

  protected setMode(mode: CaptureMode, reason: string): void {
    const now = Date.now();
    this.modeMs.set(this.mode, (this.modeMs.get(this.mode) ?? 0) + (now - this.modeSinceMs));
    this.modeSinceMs = now;
    this.mode = mode;
    const level = mode === CaptureMode.CAPTURE_MODE_DATA ? "info" : "warn";
    this.settings.logger.log(level, "capture mode changed", { mode: CaptureMode[mode], reason });
    this.emit("mode", mode, reason);
    this.changed.notify();
  }

  requireResync(reason: string): void {
    if (this.resyncRequired) return;
    this.resyncRequired = true;
    this.resyncReason = reason;
    this.settings.logger.warn("resync required", { reason });
    this.emit("resync-required", reason);
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

  protected disk(index: number): CaptureDisk {
    const d = this.diskList.find((x) => x.index === index);
    if (!d) throw new Error(`no disk ${index}`);
    return d;
  }
}

export const EMPTY = Buffer.alloc(0);
