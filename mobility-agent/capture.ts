import { isPromise } from "../common/async/index.js";
import { isZero } from "../common/bytes/index.js";
import { isMarker } from "../common/replica/index.js";
import { CaptureMode, type WriteRecord } from "../proto/index.js";
import { type CaptureDisk, CaptureRecorder, type CaptureSettings } from "./capture-recorder.js";
import type { SequenceCounter } from "./sequence-counter.js";

export { type CaptureDisk, type CaptureEvents, type CaptureSettings, METADATA_RECORD_BYTES } from "./capture-recorder.js";

/**
 * The machine's sequenced record stream as the process server sees it: batches within the
 * window, acknowledgements, the numbering agreed at each open, the drain of dirty blocks back to
 * data mode, and the waits for durability. Recording writes and the capture modes are
 * CaptureRecorder's. The one piece of state every other part (exports, replication client, sync,
 * commands) goes through.
 */
export class Capture extends CaptureRecorder {
  /** Highest sequence this process ever put on a stream. */
  private highestSent = 0;
  /** Highest sequence a previous run of the agent may have sent (the counter file at start). */
  private readonly startupLast: number;
  /** The process server's durable sequence at the last open; undefined before the first. */
  private confirmedDurable: number | undefined;

  constructor(disks: readonly CaptureDisk[], counter: SequenceCounter, settings: CaptureSettings) {
    super(disks, counter, settings);
    this.startupLast = counter.last;
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

  protected stopDrain(): void {
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
}
