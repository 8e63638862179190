import type { Logger } from "../common/logger.js";
import { type CodecName, encodeSegment } from "../common/segment/index.js";
import type { BlobStore } from "../common/storage/index.js";
import type { WriteRecord } from "../proto/index.js";
import type { DiskCache } from "./cache/index.js";
import type { DirectionEpoch } from "./direction-epochs.js";
import type { Machine } from "./machine.js";
import type { ProcessServerMetrics } from "./metrics.js";
import type { LogLocation } from "./storage-layout.js";
import { withStorageRetry } from "./storage-retry.js";
import { Wake } from "./wake.js";

export interface UploaderOptions {
  machine: Machine;
  cache: DiskCache;
  store: BlobStore;
  maxBytes: number;
  maxDelayMs: number;
  codec: CodecName;
  key: Buffer;
  keyId: string;
  retryTimeUnitMs: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  /** Where an epoch's segments go (a segment never spans a direction change). */
  logOf: (epoch: DirectionEpoch) => LogLocation;
  /** Called with each uploaded run, in sequence order (the applier's input). */
  onUploaded: (records: WriteRecord[]) => void;
}

/** Raw size of a record as the segment cut counts it. */
export function recordBytes(r: WriteRecord): number {
  return r.data.length + 48;
}

/**
 * Cuts one machine's cached writes into segments and uploads them. A segment is cut when it holds
 * maxBytes or its first write has waited maxDelayMs. Upload success moves the uploaded position
 * (persisted before the cache releases anything), so after a crash the range is simply uploaded
 * again under the same sequence-based name.
 */
export class Uploader {
  private readonly wake = new Wake();
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private firstPendingAtMs?: number;
  private pendingBytes = 0;
  private flushRequested = false;

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
    this.firstPendingAtMs ??= Date.now();
    if (this.pendingBytes >= this.o.maxBytes) this.wake.notify();
    else if (this.pendingBytes === bytes) this.wake.notify(); // first pending write starts the delay clock
  }

  /** Upload what is cached now without waiting for the segment delay (DrainMachine). */
  flush(): void {
    this.flushRequested = true;
    this.wake.notify();
  }

  private async run(): Promise<void> {
    const { machine, cache } = this.o;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const from = machine.uploaded.value + 1;
      if (cache.lastSequence(machine.id) < from) {
        this.firstPendingAtMs = undefined;
        this.pendingBytes = 0;
        this.flushRequested = false;
        await this.wake.wait(signal);
        continue;
      }
      this.firstPendingAtMs ??= Date.now();
      const age = Date.now() - this.firstPendingAtMs;
      if (!this.flushRequested && this.pendingBytes < this.o.maxBytes && age < this.o.maxDelayMs) {
        await this.wake.wait(signal, this.o.maxDelayMs - age);
        continue;
      }
      try {
        await this.uploadFrom(from, signal);
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      }
    }
  }

  private async uploadFrom(from: number, signal: AbortSignal): Promise<void> {
    const { machine, cache, store, logger, metrics } = this.o;
    const read = (await cache.read(machine.id, from, this.o.maxBytes)).filter((r) => r.sequence >= from);
    if (read.length === 0) {
      await this.wake.wait(signal, 50);
      return;
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
    const name = this.o.logOf(epoch).name(first, last);
    const started = process.hrtime.bigint();
    const segment = await encodeSegment(records, { machineId: machine.id, key: this.o.key, keyId: this.o.keyId, codec: this.o.codec });
    await withStorageRetry(() => store.putObject(name, segment), {
      machine,
      stage: "upload",
      operation: `upload of segment ${first}-${last} of machine ${machine.id}`,
      timeUnitMs: this.o.retryTimeUnitMs,
      signal,
      logger,
      onFailure: () => metrics.uploadFailures.inc({ machine: machine.id }),
    });
    metrics.uploadSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    metrics.uploadedSegments.inc({ machine: machine.id });
    metrics.uploadedBytes.inc({ machine: machine.id }, segment.length);

    machine.uploaded.advance(last);
    await machine.save();
    await cache.release(machine.id, last);
    const bytes = records.reduce((n, r) => n + recordBytes(r), 0);
    this.pendingBytes = Math.max(0, this.pendingBytes - bytes);
    // Whatever is still cached arrived after the first write of this segment, so it is no older:
    // keeping the clock uploads a backlog back to back instead of waiting again.
    if (cache.lastSequence(machine.id) <= last) this.firstPendingAtMs = undefined;
    logger.debug("segment uploaded", { machineId: machine.id, first, last, bytes: segment.length });
    this.o.onUploaded(records);
  }
}
