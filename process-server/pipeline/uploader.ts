import type { Logger } from "../../common/logger.js";
import { type CodecName, encodeSegment, type SegmentKeyRing } from "../../common/segment/index.js";
import type { BlobStore } from "../../common/storage/index.js";
import { recordBytes } from "../../common/wire/index.js";
import type { WriteRecord } from "../../proto/index.js";
import type { DiskCache } from "../cache/index.js";
import type { DirectionEpoch } from "../direction-epochs.js";
import type { Machine } from "../machine.js";
import type { ProcessServerMetrics } from "../metrics.js";
import type { LogLocation } from "../../common/storage-layout/index.js";
import { withStorageRetry } from "./storage-retry.js";
import { type Semaphore, Wake } from "../../common/async/index.js";

export interface UploaderOptions {
  machine: Machine;
  cache: DiskCache;
  store: BlobStore;
  maxBytes: number;
  maxDelayMs: number;
  codec: CodecName;
  /** Read at every segment, so a rotation applies from the next segment on. */
  keys: SegmentKeyRing;
  retryTimeUnitMs: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  /** Where an epoch's segments go (a segment never spans a direction change). */
  logOf: (epoch: DirectionEpoch) => LogLocation;
  /** Called with each uploaded run, in sequence order (the applier's input). */
  onUploaded: (records: WriteRecord[]) => void;
  /** Segments of this machine compressing and uploading at once. */
  concurrency: number;
  /** Upload permits shared by every machine of the process server (bounds memory). */
  uploadSlots: Semaphore;
}

/**
 * Cuts one machine's cached writes into segments and uploads them. A segment is cut when it holds
 * maxBytes or its first write has waited maxDelayMs. Up to `concurrency` segments compress and
 * upload at once, but upload success moves the uploaded position strictly in sequence order
 * (persisted before the cache releases anything), so after a crash the range is simply uploaded
 * again under the same sequence-based name.
 */
export class Uploader {
  private readonly wake = new Wake();
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  /** When the oldest write not yet cut into a segment arrived. */
  private firstPendingAtMs?: number;
  /** Bytes appended and not yet uploaded (status: pending bytes). */
  private pendingBytes = 0;
  /** Bytes appended and not yet cut into a segment (what the cut rule counts). */
  private uncutBytes = 0;
  private flushRequested = false;
  /** Highest sequence cut into a segment (uploading or uploaded). */
  private cutThrough = 0;
  /** Commits of the segments in flight, oldest first; they never reject. */
  private readonly inFlight: Promise<void>[] = [];
  /** The last commit in the chain (each commit waits for the one before it). */
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly o: UploaderOptions) {}

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.o.logger.error("uploader stopped unexpectedly", { machineId: this.o.machine.id, error: String(err) });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error("process server stopping"));
    await this.loop;
  }

  /** Cached bytes not yet uploaded, as counted since this process started. */
  get pendingBytesEstimate(): number {
    return this.pendingBytes;
  }

  /** New records are durable in the cache. */
  noteAppended(bytes: number): void {
    this.pendingBytes += bytes;
    this.uncutBytes += bytes;
    this.firstPendingAtMs ??= Date.now();
    if (this.uncutBytes >= this.o.maxBytes) this.wake.notify();
    else if (this.uncutBytes === bytes) this.wake.notify(); // first pending write starts the delay clock
  }

  /** Upload what is cached now without waiting for the segment delay (DrainMachine). */
  flush(): void {
    this.flushRequested = true;
    this.wake.notify();
  }

  private async run(): Promise<void> {
    try {
      await this.cutLoop();
    } finally {
      // Nothing may touch the cache after stop(): let the segments in flight settle.
      await Promise.all(this.inFlight);
    }
  }

  private async cutLoop(): Promise<void> {
    const { machine, cache } = this.o;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (this.failure !== undefined) throw this.failure;
      this.cutThrough = Math.max(this.cutThrough, machine.uploaded.value);
      const from = this.cutThrough + 1;
      if (cache.lastSequence(machine.id) < from) {
        // Everything cached is cut (a flush is served once its data is on its way).
        this.firstPendingAtMs = undefined;
        this.uncutBytes = 0;
        this.flushRequested = false;
        if (this.inFlight.length === 0) this.pendingBytes = 0;
        await this.wake.wait(signal);
        continue;
      }
      this.firstPendingAtMs ??= Date.now();
      const age = Date.now() - this.firstPendingAtMs;
      if (!this.flushRequested && this.uncutBytes < this.o.maxBytes && age < this.o.maxDelayMs) {
        await this.wake.wait(signal, this.o.maxDelayMs - age);
        continue;
      }
      if (this.inFlight.length >= this.o.concurrency) {
        await this.inFlight[0];
        continue;
      }
      if (!(await this.o.uploadSlots.acquire(signal))) return;
      let started = false;
      try {
        started = await this.cut(from, signal);
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      } finally {
        if (!started) this.o.uploadSlots.release();
      }
    }
  }

  /**
   * Reads the next segment's records from the cache and starts its upload; true when started (the
   * caller's process slot is then released once the segment settles).
   */
  private async cut(from: number, signal: AbortSignal): Promise<boolean> {
    const { machine, cache, logger } = this.o;
    const read = (await cache.read(machine.id, from, this.o.maxBytes)).filter((r) => r.sequence >= from);
    if (read.length === 0) {
      await this.wake.wait(signal, 50);
      return false;
    }
    const epoch = machine.epochs.at(read[0]!.sequence);
    const end = machine.epochs.endOf(epoch);
    const records = read.filter((r) => r.sequence <= end);
    const first = records[0]!.sequence;
    if (first !== from) {
      // The cache lost writes it had acknowledged (e.g. its files were damaged): the replica can
      // only be repaired by a resync; keep replicating what we have meanwhile.
      machine.resyncReason = `process-server cache is missing sequences ${from}..${first - 1}`;
      logger.error("cache is missing acknowledged writes; resync required", { machineId: machine.id, from, first });
    }
    const last = records[records.length - 1]!.sequence;
    const bytes = records.reduce((n, r) => n + recordBytes(r), 0);
    this.cutThrough = last;
    this.uncutBytes = Math.max(0, this.uncutBytes - bytes);
    // Whatever is still cached arrived after the first write of this segment, so it is no older:
    // keeping the clock cuts a backlog back to back instead of waiting again.
    if (cache.lastSequence(machine.id) <= last) this.firstPendingAtMs = undefined;

    const uploaded = this.upload(records, first, last, epoch, signal);
    uploaded.catch(() => undefined); // observed by the commit below
    const committed = this.tail.then(async () => {
      if (this.failure !== undefined || signal.aborted) return;
      await uploaded;
      await this.commit(records, last, bytes);
    });
    this.tail = committed.catch((err: unknown) => {
      this.failure ??= err;
      this.wake.notify();
    });
    const settled = this.tail.finally(() => {
      this.o.uploadSlots.release();
      const i = this.inFlight.indexOf(settled);
      if (i >= 0) this.inFlight.splice(i, 1);
      this.wake.notify();
    });
    this.inFlight.push(settled);
    return true;
  }

  /** Encodes and stores one segment (retrying storage outages). */
  private async upload(records: WriteRecord[], first: number, last: number, epoch: DirectionEpoch, signal: AbortSignal): Promise<void> {
    const { machine, store, logger, metrics } = this.o;
    const name = this.o.logOf(epoch).name(first, last);
    const started = process.hrtime.bigint();
    const { key, keyId } = this.o.keys.current();
    const segment = await encodeSegment(records, { machineId: machine.id, key, keyId, codec: this.o.codec });
    await withStorageRetry(() => store.putObject(name, segment), {
      machine,
      stage: "upload",
      store,
      operation: `upload of segment ${first}-${last} of machine ${machine.id}`,
      timeUnitMs: this.o.retryTimeUnitMs,
      signal,
      logger,
      onFailure: () => metrics.uploadFailures.inc({ machine_id: machine.id }),
    });
    metrics.uploadSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    metrics.uploadedSegments.inc({ machine_id: machine.id });
    metrics.uploadedBytes.inc({ machine_id: machine.id }, segment.length);
    logger.debug("segment uploaded", { machineId: machine.id, first, last, bytes: segment.length });
  }

  /** In sequence order: the segment is in storage, so move the uploaded position and free the cache. */
  private async commit(records: WriteRecord[], last: number, bytes: number): Promise<void> {
    const { machine, cache } = this.o;
    machine.uploaded.advance(last);
    for (const r of records) machine.uploadedBytesTotal += r.data.length;
    // In the same turn as the advance: an applier woken in between would find more uploaded than
    // queued and fetch back from storage the segment it is about to be handed from memory.
    this.o.onUploaded(records);
    await machine.save();
    await cache.release(machine.id, last);
    this.pendingBytes = Math.max(0, this.pendingBytes - bytes);
    if (cache.lastSequence(machine.id) <= last) this.pendingBytes = 0;
  }
}
