import { ErrorCode, retrySchedule, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { applyRecords } from "../common/replica/index.js";
import { decodeSegment, parseSegmentObjectName } from "../common/segment/index.js";
import { type BlobStore, isStorageNotFound } from "../common/storage/index.js";
import { Health, WriteKind, type WriteRecord } from "../proto/index.js";
import { blobPageTarget, pageBlobSizeFor } from "./blob-page-target.js";
import type { Machine } from "./machine.js";
import type { ReplicaDisk } from "./machine-registry.js";
import type { ProcessServerMetrics } from "./metrics.js";
import type { PointDocument, PointStore } from "./point-store.js";
import { logPrefix, replicaBlobName, stateObjectName } from "./storage-layout.js";
import { withStorageRetry } from "./storage-retry.js";
import { recordBytes } from "./uploader.js";
import { Wake } from "./wake.js";

/** `machines/<id>/state.json`. */
export interface ReplicaState {
  processedSequence: number;
  uploadedSequence: number;
}

export interface ApplierOptions {
  machine: Machine;
  store: BlobStore;
  points: PointStore;
  segmentKeys: (keyId: string) => Buffer | undefined;
  retryTimeUnitMs: number;
  /** Uploaded records held in memory at most; beyond it the applier re-reads them from storage. */
  maxQueueBytes: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  /** A point was made (or found already made after a restart): report it to the CS. */
  onPoint: (doc: PointDocument) => void;
}

type Job =
  | { kind: "records"; records: WriteRecord[]; bytes: number }
  | { kind: "crash-point"; resolve: (doc: PointDocument | undefined) => void; reject: (err: unknown) => void };

/**
 * Applies one machine's uploaded writes, in sequence order, to its replica page blobs and records
 * the processed position in storage. Uploaded runs normally arrive in memory from the uploader;
 * whatever is not in memory (after a restart, or when the queue overflowed) is read back from the
 * log segments in storage. TAG records become app-consistent recovery points, taken exactly after
 * everything before the tag is applied.
 */
export class Applier {
  private readonly wake = new Wake();
  private readonly abort = new AbortController();
  private readonly queue: Job[] = [];
  private queuedBytes = 0;
  private loop?: Promise<void>;
  private readonly createdBlobs = new Set<number>();
  private lastPointSequence = 0;

  constructor(private readonly o: ApplierOptions) {}

  /** Restores the processed position from storage; the uploaded position never falls below it. */
  async init(): Promise<void> {
    const { machine, store } = this.o;
    const state = await this.retry("read of the replica state", async () => {
      try {
        return JSON.parse((await store.getObject(stateObjectName(machine.id))).toString("utf8")) as ReplicaState;
      } catch (err) {
        if (isStorageNotFound(err)) return undefined;
        throw err;
      }
    });
    if (state) {
      machine.processed.advance(state.processedSequence);
      if (state.uploadedSequence > machine.uploaded.value) machine.uploaded.advance(state.uploadedSequence);
    }
    const points = await this.retry("listing of recovery points", () => this.o.points.list(machine.id));
    this.lastPointSequence = points.at(-1)?.sequence ?? 0;
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

  enqueue(records: WriteRecord[]): void {
    const bytes = records.reduce((n, r) => n + recordBytes(r), 0);
    // Dropping is safe: the gap is noticed and filled from the segments in storage.
    if (this.queuedBytes + bytes <= this.o.maxQueueBytes) {
      this.queue.push({ kind: "records", records, bytes });
      this.queuedBytes += bytes;
    }
    this.wake.notify();
  }

  /** A crash-consistent point at the processed position, or undefined when nothing changed since the last point. */
  requestCrashPoint(): Promise<PointDocument | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: "crash-point", resolve, reject });
      this.wake.notify();
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
        machine.setIssue("apply", { health: Health.HEALTH_CRITICAL, code: "APPLY_FAILED", message: String((err as Error).message ?? err) });
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
    const head = this.queue[0];
    if (head?.kind === "crash-point") {
      this.queue.shift();
      await this.crashPoint().then(head.resolve, head.reject);
      return true;
    }
    if (head?.kind === "records") {
      const fresh = head.records.filter((r) => r.sequence > machine.processed.value);
      if (fresh.length === 0) {
        this.shift();
        return true;
      }
      if (fresh[0]!.sequence === machine.processed.value + 1) {
        this.shift();
        await this.applyRun(fresh);
        return true;
      }
    }
    if (machine.processed.value < machine.uploaded.value) {
      await this.catchUpFromStorage();
      return true;
    }
    return false;
  }

  private shift(): void {
    const job = this.queue.shift();
    if (job?.kind === "records") this.queuedBytes -= job.bytes;
  }

  /** Applies the segments in storage covering (processed, uploaded]. */
  private async catchUpFromStorage(): Promise<void> {
    const { machine, store, logger } = this.o;
    const target = machine.uploaded.value;
    const listing = await this.retry("listing of log segments", () => store.listObjects(logPrefix(machine.id)));
    const segments = listing
      .flatMap((info) => {
        const parsed = parseSegmentObjectName(info.name);
        return parsed && parsed.machineId === machine.id && parsed.lastSequence > machine.processed.value ? [{ name: info.name, ...parsed }] : [];
      })
      .sort((a, b) => a.firstSequence - b.firstSequence || b.lastSequence - a.lastSequence);
    for (const seg of segments) {
      if (this.abort.signal.aborted || machine.processed.value >= target) return;
      if (seg.lastSequence <= machine.processed.value) continue;
      if (seg.firstSequence > machine.processed.value + 1) break;
      const buf = await this.retry(`download of ${seg.name}`, () => store.getObject(seg.name));
      const { records } = await decodeSegment(buf, this.o.segmentKeys, { machineId: machine.id, firstSequence: seg.firstSequence });
      const fresh = records.filter((r) => r.sequence > machine.processed.value && r.sequence <= target);
      if (fresh.length) await this.applyRun(fresh);
    }
    if (machine.processed.value < target) {
      // The log has a hole: what follows cannot be applied on top of a replica missing writes.
      const from = machine.processed.value + 1;
      const next = segments.find((s) => s.firstSequence > from)?.firstSequence ?? target + 1;
      machine.resyncReason = `log segments for sequences ${from}..${next - 1} are missing from storage`;
      logger.error("log has a hole; skipping it, the machine needs a resync", { machineId: machine.id, from, to: next - 1 });
      machine.processed.advance(next - 1);
    }
  }

  /** `records` are contiguous and start right after the processed position. */
  private async applyRun(records: WriteRecord[]): Promise<void> {
    const { machine, metrics } = this.o;
    let run: WriteRecord[] = [];
    for (const r of records) {
      if (r.kind !== WriteKind.WRITE_KIND_TAG) {
        run.push(r);
        continue;
      }
      await this.applyToDisks(run);
      run = [];
      machine.processed.advance(r.sequence - 1);
      await this.makePoint({ type: "app-consistent", sequence: r.sequence, tagName: r.tagName, consistencyGroup: r.consistencyGroup });
      machine.processed.advance(r.sequence);
    }
    await this.applyToDisks(run);
    const last = records[records.length - 1]!.sequence;
    machine.processed.advance(last);
    metrics.appliedRecords.inc({ machine: machine.id }, records.length);
    await this.persistState();
  }

  private async applyToDisks(run: WriteRecord[]): Promise<void> {
    if (run.length === 0) return;
    const indexes = [...new Set(run.map((r) => r.diskIndex))];
    await Promise.all(
      indexes.map(async (index) => {
        const disk = await this.ensureReplica(index);
        const blob = replicaBlobName(this.o.machine.id, index);
        await this.retry(`apply to ${blob}`, () => applyRecords(blobPageTarget(this.o.store, blob), run, index, pageBlobSizeFor(disk.sizeBytes)));
      }),
    );
    this.o.machine.processed.advance(run[run.length - 1]!.sequence);
  }

  /** Creates the replica blob the first time this process applies to it (idempotent). */
  private async ensureReplica(index: number): Promise<ReplicaDisk> {
    const { machine, store } = this.o;
    let disk = machine.disk(index);
    if (!disk) {
      // Facts lost (e.g. a wiped data dir): the replica blob in storage still knows the size.
      const size = await this.retry("replica size lookup", () => store.pageBlobSize(replicaBlobName(machine.id, index)));
      if (size === undefined) throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${machine.id} has no disk ${index}`);
      disk = { index, sizeBytes: size, addedAtSequence: 0 };
      machine.setDisk(disk);
    }
    if (!this.createdBlobs.has(index)) {
      const d = disk;
      await this.retry("replica creation", () => store.createPageBlob(replicaBlobName(machine.id, index), pageBlobSizeFor(d.sizeBytes)));
      this.createdBlobs.add(index);
    }
    return disk;
  }

  private async crashPoint(): Promise<PointDocument | undefined> {
    const sequence = this.o.machine.processed.value;
    if (sequence === 0 || sequence <= this.lastPointSequence) return undefined;
    return this.makePoint({ type: "crash-consistent", sequence });
  }

  private async makePoint(spec: Parameters<PointStore["create"]>[1]): Promise<PointDocument> {
    const { machine, metrics, logger } = this.o;
    for (const d of machine.diskList()) await this.ensureReplica(d.index);
    const { doc, created } = await this.retry(`${spec.type} point at ${spec.sequence}`, () => this.o.points.create(machine, spec), "points");
    this.lastPointSequence = Math.max(this.lastPointSequence, spec.sequence);
    if (created) {
      metrics.recoveryPoints.inc({ machine: machine.id, type: spec.type });
      logger.info("recovery point created", { machineId: machine.id, pointId: doc.recoveryPointId, type: spec.type, sequence: spec.sequence });
    }
    this.o.onPoint(doc);
    return doc;
  }

  private async persistState(): Promise<void> {
    const { machine, store } = this.o;
    const state: ReplicaState = { processedSequence: machine.processed.value, uploadedSequence: machine.uploaded.value };
    await this.retry("write of the replica state", () => store.putObject(stateObjectName(machine.id), Buffer.from(JSON.stringify(state))));
  }

  private retry<T>(operation: string, fn: () => Promise<T>, stage = "apply"): Promise<T> {
    return withStorageRetry(fn, {
      machine: this.o.machine,
      stage,
      operation: `${operation} (machine ${this.o.machine.id})`,
      timeUnitMs: this.o.retryTimeUnitMs,
      signal: this.abort.signal,
      logger: this.o.logger,
    });
  }
}
