export type WorkloadProfile = "sequential" | "random" | "zipf" | "append-log";

export const WORKLOAD_PROFILES: readonly WorkloadProfile[] = ["sequential", "random", "zipf", "append-log"];

export interface WorkloadSpec {
  profile: WorkloadProfile;
  /** Same seed (and spec and disk size) → same sequence of (offset, length, data). Default 1. */
  seed?: number | string;
  /** Write size for sequential (default 64 KiB), zipf (4 KiB) and append-log (4 KiB). */
  blockSize?: number;
  /** Sizes the random profile draws from, uniformly. Default 4 KiB … 1 MiB in powers of two. */
  blockSizes?: number[];
  /** Zipf exponent s (> 0); larger is hotter. Default 1.1. */
  zipfExponent?: number;
  /** Flush after every N writes. Default 8 for append-log, 0 (only at the end) otherwise. */
  flushEvery?: number;
  /** Confine writes to this byte range of the disk. Default the whole disk. */
  region?: { offset: number; length: number };
  /** Bytes per second; 0/undefined = unlimited. */
  rateBytesPerSec?: number;
  /** Writes per second; 0/undefined = unlimited. */
  iops?: number;
  /** Stop issuing after this long. */
  durationMs?: number;
  /** Stop after this many writes. */
  maxWrites?: number;
  /** Stop once this many bytes were issued. Defaults to one pass over the region when no limit is given. */
  maxBytes?: number;
  /** Writes in flight at once. Default 1 (then writes land in exactly the generated order). */
  queueDepth?: number;
  /** Share of each 4 KiB that is incompressible; the rest repeats a short stamp. Default 0.5. */
  randomFraction?: number;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const DEFAULT_RANDOM_SIZES = [4, 8, 16, 32, 64, 128, 256, 1024].map((k) => k * KiB);
