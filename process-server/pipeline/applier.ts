import { retrySchedule } from "../../common/errors/index.js";
import type { Logger } from "../../common/logger.js";
import { decodeSegment } from "../../common/segment/index.js";
import { type BlobStore, isStorageNotFound } from "../../common/storage/index.js";
import { Health, HealthIssueCode, type WriteRecord } from "../../proto/index.js";
import type { ApplySink } from "./apply-sink.js";
import type { DirectionEpoch } from "../direction-epochs.js";
import type { Machine } from "../machine.js";
import { Mutex } from "../../common/async/index.js";
import type { PointDocument } from "../points/index.js";
import type { ReplicaSink } from "./replica-sink.js";
import type { LogLocation } from "../../common/storage-layout/index.js";
import { withStorageRetry } from "./storage-retry.js";
import { recordBytes } from "../../common/wire/index.js";
import { Wake } from "../../common/async/index.js";

/** `machines/<id>/state.json` (and the failback prefix's state.json for the reverse direction). */
export interface ReplicaState {
  processedSequence: number;
  uploadedSequence: number;
  /** The writer: positions of another process server's numbering are not ours (absent in old states). */
  processServerId?: string;
}

export interface ApplierOptions {
  machine: Machine;
  store: BlobStore;
  segmentKeys: (keyId: string) => Buffer | undefined;
  retryTimeUnitMs: number;
  /** Uploaded records held in memory at most; beyond it the applier re-reads them from storage. */
  maxQueueBytes: number;
  /** Queued runs applied together in one pass, up to this many bytes: denser batches, fewer calls. */
  batchBytes: number;
  /** Least time between the starts of two passes while less than batchBytes is queued (0: none). */
  passIntervalMs: number;
  /**
   * The machine's last record received (durable in the cache). While everything received is
   * queued here and nothing new came for QUIET_MS, the writes have stopped: a pass starts at once,
   * since waiting would gather nothing.
   */
  receivedSequence: () => number;
  logger: Logger;
  processServerId: string;
  /** The on-premises → Azure sink, which also makes the crash-consistent points. */
  replica: ReplicaSink;
  /** The sink of an epoch's direction; `retire` ends one whose epoch is fully processed. */
  sinks: { of(epoch: DirectionEpoch): ApplySink; retire(epoch: DirectionEpoch): Promise<void> };
  /** Where an epoch's segments are stored. */
  logOf: (epoch: DirectionEpoch) => LogLocation;
  /** Where the processed position is persisted while it lies in an epoch of `direction`. */
  stateOf: (direction: DirectionEpoch["direction"]) => string;
}

/** How long without new uploads, with nothing else received, before the writes count as stopped. */
const QUIET_MS = 300;

type Job =
  | { kind: "records"; records: WriteRecord[]; bytes: number }
  | { kind: "crash-point"; resolve: (doc: PointDocument | undefined) => void; reject: (err: unknown) => void };

/**
 * Delivers one machine's uploaded writes, in sequence order, to the sink of their direction (the
 * replica page blobs, or the master target during failback) and persists the processed position
 * in storage. Uploaded runs normally arrive in memory from the uploader; whatever is not in memory
 * (after a restart, or when the queue overflowed) is read back from the log segments in storage.
 * At a direction change the previous sink finishes first, so "processed" stays one position.
 */
export class Applier {
  private readonly wake = new Wake();
  private readonly abort = new AbortController();
  private readonly queue: Job[] = [];
  private queuedBytes = 0;
  private loop?: Promise<void>;
  /** Highest sequence handed to a sink (ahead of processed while a master target has not acked). */
  private fed = 0;
  private currentEpoch?: DirectionEpoch;
  /** When the last pass over queued records started (performance.now()). */
  private lastPassAt = Number.NEGATIVE_INFINITY;
  /** Passes up to this sequence start without waiting for passIntervalMs (someone waits for them). */
  private hurryTo = 0;
  /** When records were last queued, and the last of them (performance.now(); sequence). */
  private lastQueuedAt = Number.NEGATIVE_INFINITY;
  private lastQueued = 0;
  private readonly stateLock = new Mutex();
  private stateDirty = false;

  constructor(private readonly o: ApplierOptions) {}

  /** Restores the processed position from storage; the uploaded position never falls below it. */
  async init(): Promise<void> {
    const { machine, store } = this.o;
    for (const name of [this.o.stateOf("to-azure"), this.o.stateOf("to-on-premises")]) {
      const state = await this.retry("read of the replica state", async () => {
        try {
          return JSON.parse((await store.getObject(name)).toString("utf8")) as ReplicaState;
        } catch (err) {
          if (isStorageNotFound(err)) return undefined;
          throw err;
        }
      });
      // The replica's state.json is shared by whichever process server replicates the machine to
      // Azure; one written by another process server (another numbering) says nothing about ours.
      if (!state || (state.processServerId && state.processServerId !== this.o.processServerId)) continue;
      machine.processed.advance(state.processedSequence);
      if (state.uploadedSequence > machine.uploaded.value) machine.uploaded.advance(state.uploadedSequence);
    }
    this.fed = machine.processed.value;
    await this.o.replica.init();
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.o.logger.error("applier stopped unexpectedly", { machineId: this.o.machine.id, error: String(err) });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error("process server stopping"));
    await this.loop;
    for (const job of this.queue.splice(0)) if (job.kind === "crash-point") job.reject(this.abort.signal.reason);
  }

  /** Applies everything up to `sequence` without the pause between passes (a drain or failover waits for it). */
  hurry(sequence: number): void {
    this.hurryTo = Math.max(this.hurryTo, sequence);
    this.wake.notify();
  }

  enqueue(records: WriteRecord[]): void {
    const bytes = records.reduce((n, r) => n + recordBytes(r), 0);
    // Dropping is safe: the gap is noticed and filled from the segments in storage.
    if (this.queuedBytes + bytes <= this.o.maxQueueBytes) {
      this.queue.push({ kind: "records", records, bytes });
      this.queuedBytes += bytes;
    }
    this.lastQueuedAt = performance.now();
    this.lastQueued = Math.max(this.lastQueued, records.at(-1)?.sequence ?? 0);
    this.wake.notify();
  }

  /** A crash-consistent point at the processed position, or undefined when nothing changed since the last point. */
  requestCrashPoint(): Promise<PointDocument | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "crash-point", resolve, reject });
      this.wake.notify();
    });
  }

  /** Writes the positions to storage; concurrent calls collapse into one write of the newest values. */
  persistState(): Promise<void> {
    this.stateDirty = true;
    return this.stateLock.run(async () => {
      if (!this.stateDirty) return;
      this.stateDirty = false;
      const { machine, store } = this.o;
      const state: ReplicaState = {
        processedSequence: machine.processed.value,
        uploadedSequence: machine.uploaded.value,
        processServerId: this.o.processServerId,
      };
      const name = this.o.stateOf(machine.epochs.at(state.processedSequence).direction);
      await this.retry("write of the replica state", () => store.putObject(name, Buffer.from(JSON.stringify(state))));
    });
  }

  private async run(): Promise<void> {
    const { machine } = this.o;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        if (await this.step()) continue;
      } catch (err) {
        if (signal.aborted) return;
        // Not a storage outage (those retry inside): e.g. a segment that fails authentication.
        machine.setIssue("apply", { health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_APPLY_FAILED, message: String((err as Error).message ?? err) });
        this.o.logger.error("apply failed; retrying later", { machineId: machine.id, error: String((err as Error).message ?? err) });
        await this.wake.wait(signal, retrySchedule(1, this.o.retryTimeUnitMs));
        continue;
      }
      await this.wake.wait(signal);
    }
  }

  /** One unit of work; false when there is nothing to do. */
  private async step(): Promise<boolean> {
    const { machine } = this.o;
    // A master target may report more than this process remembered (its acks outrun the state file).
    this.fed = Math.max(this.fed, machine.processed.value);
    const head = this.queue[0];
    if (head?.kind === "crash-point") {
      this.queue.shift();
      // No recovery points in the failback direction: the replica does not move there.
      const forward = machine.epochs.at(machine.processed.value).direction === "to-azure";
      await (forward ? this.o.replica.crashPoint() : Promise.resolve(undefined)).then(head.resolve, head.reject);
      return true;
    }
    if (head?.kind === "records") {
      const fresh = head.records.filter((r) => r.sequence > this.fed);
      if (fresh.length === 0) {
        this.shift();
        return true;
      }
      if (fresh[0]!.sequence === this.fed + 1) {
        // Only the replica's page blobs gain from fuller passes; a master target applies as writes come.
        const toReplica = machine.epochs.at(this.fed + 1).direction === "to-azure";
        const now = performance.now();
        const pause = this.lastPassAt + this.o.passIntervalMs - now;
        // Until the writes stop: more is received than queued, or something was queued lately.
        const untilQuiet = this.lastQueued < this.o.receivedSequence() ? pause : this.lastQueuedAt + QUIET_MS - now;
        if (toReplica && pause > 0 && untilQuiet > 0 && this.queuedBytes < this.o.batchBytes && this.hurryTo <= this.fed) {
          await this.wake.wait(this.abort.signal, Math.min(pause, untilQuiet));
          return true;
        }
        this.lastPassAt = now;
        this.shift();
        // A backlog (the sink slower than uploads) is applied as one batch: overlapping writes
        // collapse and dense regions fill whole blocks.
        let bytes = head.bytes;
        const parts = [fresh];
        for (let next = this.queue[0]; next?.kind === "records" && bytes + next.bytes <= this.o.batchBytes; next = this.queue[0]) {
          const last = parts[parts.length - 1]!;
          if (next.records[0]?.sequence !== last[last.length - 1]!.sequence + 1) break;
          parts.push(next.records);
          bytes += next.bytes;
          this.shift();
        }
        await this.feed(parts.length === 1 ? fresh : parts.flat());
        return true;
      }
    }
    if (this.fed < machine.uploaded.value) {
      await this.catchUpFromStorage();
      return true;
    }
    return false;
  }

  private shift(): void {
    const job = this.queue.shift();
    if (job?.kind === "records") this.queuedBytes -= job.bytes;
  }

  /** Hands contiguous records (starting right after `fed`) to the sinks of their epochs. */
  private async feed(records: WriteRecord[]): Promise<void> {
    const { epochs } = this.o.machine;
    for (let i = 0; i < records.length; ) {
      const epoch = epochs.at(records[i]!.sequence);
      const end = epochs.endOf(epoch);
      let j = i;
      while (j < records.length && records[j]!.sequence <= end) j++;
      const sink = await this.use(epoch);
      await sink.apply(records.slice(i, j));
      for (let k = i; k < j; k++) this.o.machine.processedBytesTotal += records[k]!.data.length;
      this.fed = records[j - 1]!.sequence;
      i = j;
    }
  }

  /** The sink of `epoch`; the previous epoch's sink first processes everything it was given. */
  private async use(epoch: DirectionEpoch): Promise<ApplySink> {
    const previous = this.currentEpoch;
    if (previous && previous !== epoch) {
      await this.o.sinks.of(previous).settle(this.abort.signal);
      await this.o.sinks.retire(previous);
      this.o.logger.info("direction changed", { machineId: this.o.machine.id, after: epoch.startsAfter, direction: epoch.direction });
    }
    this.currentEpoch = epoch;
    return this.o.sinks.of(epoch);
  }

  /** Applies the segments in storage covering (fed, uploaded] within the epoch of fed + 1. */
  private async catchUpFromStorage(): Promise<void> {
    const { machine, store, logger } = this.o;
    const epoch = machine.epochs.at(this.fed + 1);
    const target = Math.min(machine.uploaded.value, machine.epochs.endOf(epoch));
    const log = this.o.logOf(epoch);
    const listing = await this.retry("listing of log segments", () => store.listObjects(log.prefix));
    const segments = listing
      .flatMap((info) => {
        const parsed = log.parse(info.name);
        return parsed && parsed.lastSequence > this.fed ? [{ name: info.name, ...parsed }] : [];
      })
      .sort((a, b) => a.firstSequence - b.firstSequence || b.lastSequence - a.lastSequence);
    for (const seg of segments) {
      if (this.abort.signal.aborted || this.fed >= target) return;
      if (seg.lastSequence <= this.fed) continue;
      if (seg.firstSequence > this.fed + 1) break;
      const buf = await this.retry(`download of ${seg.name}`, () => store.getObject(seg.name));
      const { records } = await decodeSegment(buf, this.o.segmentKeys, { machineId: machine.id, firstSequence: seg.firstSequence });
      const fresh = records.filter((r) => r.sequence > this.fed && r.sequence <= target);
      if (fresh.length) await this.feed(fresh);
    }
    if (this.fed < target && !this.abort.signal.aborted) {
      // The log has a hole: what follows cannot be applied on top of a target missing writes.
      const from = this.fed + 1;
      const next = Math.min(segments.find((s) => s.firstSequence > from)?.firstSequence ?? target + 1, target + 1);
      machine.resyncReason = `log segments for sequences ${from}..${next - 1} are missing from storage`;
      logger.error("log has a hole; skipping it, the machine needs a resync", { machineId: machine.id, from, to: next - 1 });
      const sink = await this.use(epoch);
      await sink.settle(this.abort.signal);
      await sink.skipTo(next - 1);
      this.fed = next - 1;
    }
  }

  private retry<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStorageRetry(fn, {
      machine: this.o.machine,
      stage: "apply",
      operation: `${operation} (machine ${this.o.machine.id})`,
      timeUnitMs: this.o.retryTimeUnitMs,
      signal: this.abort.signal,
      logger: this.o.logger,
      store: this.o.store,
    });
  }
}
