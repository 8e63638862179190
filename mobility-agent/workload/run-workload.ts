import { createHash, type Hash } from "node:crypto";
import { pause } from "../../common/async/index.js";
import { BufferPool } from "../../common/bytes/index.js";
import { TokenBucket } from "./token-bucket.js";
import { WorkloadGenerator } from "./workload-generator.js";
import type { WorkloadSpec } from "./workload-spec.js";

/** Where the workload writes: an agent disk, an NBD client, a file. */
export interface WorkloadTarget {
  readonly size: number;
  write(offset: number, data: Buffer): Promise<void> | void;
  flush(): Promise<void> | void;
}

export interface WorkloadProgress {
  writes: number;
  bytes: number;
  flushes: number;
  seconds: number;
  bytesPerSec: number;
}

export interface WorkloadRunOptions {
  signal?: AbortSignal;
  onProgress?: (p: WorkloadProgress) => void;
  /** How often onProgress fires. Default 1000 ms. */
  progressIntervalMs?: number;
  /** Compute `digest`: SHA-256 over (offset, length, data) of every write in issue order. */
  digest?: boolean;
}

export interface WorkloadResult extends WorkloadProgress {
  iops: number;
  /** Stopped by the signal rather than a limit. */
  aborted: boolean;
  /** Hex SHA-256 of the write stream, when requested. */
  digest?: string;
}

/** Writes up to this size get their data in a reused buffer (the largest default random size). */
const REUSED_BUFFER_BYTES = 1024 * 1024;

/** Token buckets start this full (seconds of rate), so short runs are not all startup latency. */
const BURST_SECONDS = 0.1;

/**
 * Drive a target with a generated workload until a limit (duration, writes, bytes) or the signal
 * stops it; in-flight writes are always awaited and the target is flushed once at the end.
 */
export async function runWorkload(target: WorkloadTarget, spec: WorkloadSpec, options: WorkloadRunOptions = {}): Promise<WorkloadResult> {
  const gen = new WorkloadGenerator(spec, target.size);
  const region = spec.region?.length ?? target.size;
  const limited = spec.durationMs !== undefined || spec.maxWrites !== undefined || spec.maxBytes !== undefined;
  const maxBytes = spec.maxBytes ?? (limited ? Number.POSITIVE_INFINITY : region);
  const maxWrites = spec.maxWrites ?? Number.POSITIVE_INFINITY;
  const queueDepth = Math.max(1, Math.floor(spec.queueDepth ?? 1));
  const { signal } = options;
  const hash: Hash | undefined = options.digest ? createHash("sha256") : undefined;
  // Write data is made in reused buffers: a fresh one per write was most of a load test's own
  // garbage in the agent it drives.
  const buffers = new BufferPool(REUSED_BUFFER_BYTES, queueDepth + 1);

  const start = performance.now();
  const deadline = spec.durationMs !== undefined ? start + spec.durationMs : Number.POSITIVE_INFINITY;
  const byteBucket = spec.rateBytesPerSec ? new TokenBucket(spec.rateBytesPerSec, spec.rateBytesPerSec * BURST_SECONDS, start) : undefined;
  const opBucket = spec.iops ? new TokenBucket(spec.iops, Math.max(1, spec.iops * BURST_SECONDS), start) : undefined;

  const progress = { writes: 0, bytes: 0, flushes: 0 };
  let issuedWrites = 0;
  let issuedBytes = 0;
  let failure: unknown;
  const inflight = new Set<Promise<void>>();
  const interval = options.progressIntervalMs ?? 1000;
  let nextProgress = start + interval;

  const snapshot = (): WorkloadProgress => {
    const seconds = (performance.now() - start) / 1000;
    return { ...progress, seconds, bytesPerSec: seconds > 0 ? progress.bytes / seconds : 0 };
  };
  const drainAll = async () => {
    while (inflight.size) await Promise.all(inflight);
  };

  while (!signal?.aborted && failure === undefined && issuedWrites < maxWrites && issuedBytes < maxBytes) {
    if (performance.now() >= deadline) break;
    const op = gen.next((length) => buffers.take(length));
    if (op.kind === "flush") {
      // A flush is a barrier: it covers every write issued before it.
      await drainAll();
      if (failure !== undefined) break;
      await target.flush();
      progress.flushes++;
      continue;
    }
    const wait = Math.max(byteBucket?.reserve(op.data.length, performance.now()) ?? 0, opBucket?.reserve(1, performance.now()) ?? 0);
    if (wait > 0) {
      if (performance.now() + wait >= deadline) {
        await pause(deadline - performance.now(), signal);
        break;
      }
      if (!(await pause(wait, signal))) break;
    }
    while (inflight.size >= queueDepth) await Promise.race(inflight);
    if (failure !== undefined) break;

    hash?.update(header(op.offset, op.data.length)).update(op.data);
    issuedWrites++;
    issuedBytes += op.data.length;
    const len = op.data.length;
    const p: Promise<void> = Promise.resolve()
      .then(() => target.write(op.offset, op.data))
      .then(
        () => {
          progress.writes++;
          progress.bytes += len;
        },
        (e: unknown) => {
          failure ??= e;
        },
      )
      .finally(() => {
        inflight.delete(p);
        // The target is done with the bytes (written, or failed for good).
        buffers.give(op.data);
      });
    inflight.add(p);

    if (options.onProgress && performance.now() >= nextProgress) {
      nextProgress += interval;
      options.onProgress(snapshot());
    }
  }
  await drainAll();
  if (failure !== undefined) throw failure;
  await target.flush();
  progress.flushes++;

  const result = snapshot();
  return {
    ...result,
    iops: result.seconds > 0 ? result.writes / result.seconds : 0,
    aborted: signal?.aborted ?? false,
    ...(hash ? { digest: hash.digest("hex") } : {}),
  };
}

function header(offset: number, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(BigInt(offset), 0);
  b.writeUInt32BE(length, 8);
  return b;
}
