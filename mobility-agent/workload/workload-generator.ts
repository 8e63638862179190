import { Prng } from "../../common/random/index.js";
import { DEFAULT_RANDOM_SIZES, KiB, type WorkloadSpec } from "./workload-spec.js";

export type WorkloadOp = { kind: "write"; index: number; offset: number; data: Buffer } | { kind: "flush" };

/** Random bytes the data generator slices from; big enough that slices rarely repeat in a compressor's window. */
const POOL_SIZE = 4 * 1024 * 1024;
/** Granule of the random/repeated mix and the alignment of random offsets. */
const SECTOR = 4 * KiB;

interface Placement {
  next(): { offset: number; length: number };
}

/**
 * The deterministic op stream of a workload: what to write where, and when to flush. Timing,
 * rate limits and stop conditions live in runWorkload; this is pure so it can be replayed.
 */
export class WorkloadGenerator {
  private readonly placement: Placement;
  private readonly dataRng: Prng;
  private readonly pool: Buffer;
  private readonly flushEvery: number;
  private readonly randomFraction: number;
  private writes = 0;
  private pendingFlush = false;
  private readonly stamp = Buffer.alloc(8);

  constructor(
    readonly spec: WorkloadSpec,
    diskSize: number,
  ) {
    const region = spec.region ?? { offset: 0, length: diskSize };
    if (region.offset < 0 || region.length <= 0 || region.offset + region.length > diskSize) {
      throw new RangeError(`workload region ${region.offset}+${region.length} is not inside the ${diskSize}-byte disk`);
    }
    const root = new Prng(spec.seed ?? 1);
    const placeRng = root.fork("placement");
    this.dataRng = root.fork("data");
    this.pool = Buffer.allocUnsafe(POOL_SIZE);
    root.fork("pool").fill(this.pool);
    this.flushEvery = spec.flushEvery ?? (spec.profile === "append-log" ? 8 : 0);
    this.randomFraction = Math.min(1, Math.max(0, spec.randomFraction ?? 0.5));
    this.placement = makePlacement(spec, region, placeRng);
  }

  /** The next op; a write's data goes into a buffer from `alloc` (a new one by default). */
  next(alloc: (length: number) => Buffer = Buffer.allocUnsafe): WorkloadOp {
    if (this.pendingFlush) {
      this.pendingFlush = false;
      return { kind: "flush" };
    }
    const { offset, length } = this.placement.next();
    const index = this.writes++;
    if (this.flushEvery > 0 && this.writes % this.flushEvery === 0) this.pendingFlush = true;
    return { kind: "write", index, offset, data: this.makeData(index, alloc(length)) };
  }

  /** Half (by default) random bytes, half a repeated stamp: compresses roughly 2:1 like real disks. */
  private makeData(index: number, out: Buffer): Buffer {
    const length = out.length;
    const stamp = this.stamp;
    stamp.writeUInt32LE(index >>> 0, 0);
    for (let at = 0; at < length; at += SECTOR) {
      const n = Math.min(SECTOR, length - at);
      const rnd = Math.round(n * this.randomFraction);
      const src = this.dataRng.int(POOL_SIZE - rnd + 1);
      this.pool.copy(out, at, src, src + rnd);
      if (rnd < n) {
        stamp.writeUInt32LE(at / SECTOR, 4);
        out.fill(stamp, at + rnd, at + n);
      }
    }
    return out;
  }
}

function makePlacement(spec: WorkloadSpec, region: { offset: number; length: number }, rng: Prng): Placement {
  const end = region.offset + region.length;
  switch (spec.profile) {
    case "sequential":
    case "append-log": {
      const bs = positive(spec.blockSize ?? (spec.profile === "sequential" ? 64 * KiB : 4 * KiB), "blockSize");
      let cursor = region.offset;
      // Wraps at the end of the region: a circular log / repeated passes.
      return {
        next() {
          const length = Math.min(bs, end - cursor);
          const offset = cursor;
          cursor += length;
          if (cursor >= end) cursor = region.offset;
          return { offset, length };
        },
      };
    }
    case "random": {
      const sizes = (spec.blockSizes ?? DEFAULT_RANDOM_SIZES).map((s) => positive(s, "blockSizes"));
      const fitting = sizes.filter((s) => s <= region.length);
      if (fitting.length === 0) throw new RangeError("no block size in blockSizes fits in the region");
      const align = Math.min(SECTOR, ...fitting);
      return {
        next() {
          const length = fitting[rng.int(fitting.length)]!;
          const slots = Math.floor((region.length - length) / align) + 1;
          return { offset: region.offset + rng.int(slots) * align, length };
        },
      };
    }
    case "zipf": {
      const bs = positive(spec.blockSize ?? 4 * KiB, "blockSize");
      const blocks = Math.floor(region.length / bs);
      if (blocks < 1) throw new RangeError("blockSize is larger than the region");
      const rank = zipfSampler(blocks, spec.zipfExponent ?? 1.1, rng);
      const scatter = scatterer(blocks, rng);
      return {
        next() {
          return { offset: region.offset + scatter(rank()) * bs, length: bs };
        },
      };
    }
    default:
      throw new RangeError(`unknown workload profile "${(spec as { profile: string }).profile}"`);
  }
}

/**
 * Rank in [0, n) with P(rank = k) ∝ (k+1)^-s, drawn by inverting the continuous power-law CDF on
 * [1, n+1): O(1) per draw and close to exact Zipf for the hot head, which is what matters here.
 */
function zipfSampler(n: number, s: number, rng: Prng): () => number {
  if (!(s > 0)) throw new RangeError("zipfExponent must be > 0");
  const top = n + 1;
  if (Math.abs(s - 1) < 1e-9) {
    const logTop = Math.log(top);
    return () => Math.min(n - 1, Math.floor(Math.exp(rng.float() * logTop)) - 1);
  }
  const e = 1 - s;
  const span = top ** e - 1;
  return () => Math.min(n - 1, Math.floor((1 + rng.float() * span) ** (1 / e)) - 1);
}

/** A fixed permutation of block indices so the hot ranks are spread over the disk, not packed at its start. */
function scatterer(n: number, rng: Prng): (rank: number) => number {
  const N = BigInt(n);
  const primes = [1_000_003n, 998_244_353n, 2_147_483_647n];
  const mult = primes.find((p) => N % p !== 0n) ?? 1n;
  const shift = BigInt(rng.int(n));
  return (rank) => Number((BigInt(rank) * mult + shift) % N);
}

function positive(n: number, what: string): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}
