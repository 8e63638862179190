import { performance } from "node:perf_hooks";
import type { WriteRecord } from "../../proto/index.js";
import type { ApplyCostModel } from "./apply-cost.js";
import { type ByteRange, edgeReads, planBlocks, unknownEdgeReads, type WriteRange } from "./block-plan.js";
import { coalesceWrites, copyExtent, type Extent, recordRange } from "./coalesce.js";
import { alignDown, alignUp, PAGE_SIZE, type PageTarget } from "./page-target.js";
import { isMarker } from "./markers.js";
import { runLimited } from "../async/index.js";
import type { BufferPool } from "../bytes/index.js";
import type { KnownReplica } from "./replica-block-cache.js";

export interface ApplyOptions {
  /** Largest single writePages call (page blobs accept at most 4 MiB). */
  maxWriteBytes?: number;
  /** Aligned all-zero runs at least this long are cleared instead of written. */
  clearThresholdBytes?: number;
  /** Target calls in flight at once; they always touch disjoint pages. */
  concurrency?: number;
  /**
   * Block-wise apply: where a batch's runs are dense, write whole aligned blocks (read first
   * unless fully covered) when the cost model says that is cheaper than one call per run.
   * Omitted: every run is written on its own.
   */
  blocks?: { cost: ApplyCostModel; maxBlockBytes?: number; minBlockBytes?: number };
  /** Sees the bytes the apply reads from and writes to the target, once each call succeeded. */
  observer?: ApplyObserver;
  /** Where the buffers of block writes come from and go back to (absent: a fresh one per call). */
  buffers?: BufferPool;
  /**
   * Bytes of the target known without reading it (a block cache): taken instead of reads, and
   * told every read, write and clear. Absent: every byte a write needs and lacks is read.
   */
  known?: KnownReplica;
}

/**
 * What an apply reads and writes, for whoever keeps digests of the target (the replica checksum
 * map): a range's reads come before its write (ranges of one apply are disjoint); writes and
 * clears are reported once done.
 */
export interface ApplyObserver {
  read?(offset: number, data: Buffer): void;
  /**
   * `changed` lists, in order, the ranges of `data` that hold the records' bytes; every other
   * byte of it is one this apply read from the target and reported through read().
   */
  write?(offset: number, data: Buffer, changed: readonly { offset: number; length: number }[]): void;
  clear?(offset: number, length: number): void;
}

export interface ApplyStats {
  extents: number;
  readCalls: number;
  bytesRead: number;
  writeCalls: number;
  bytesWritten: number;
  clearCalls: number;
  bytesCleared: number;
}

/**
 * Applies one disk's records to a page target. Unaligned writes are widened to whole pages with
 * bytes read from the target, but only the partially covered edge pages are read; extents whose
 * widened ranges touch are written together in chunks of at most maxWriteBytes, and long aligned
 * zero runs become clearPages. Idempotent: applying the same records again yields the same image.
 */
export async function applyRecords(
  target: PageTarget,
  records: WriteRecord[],
  diskIndex: number,
  diskSize: number,
  options: ApplyOptions = {},
): Promise<ApplyStats> {
  const maxWrite = alignDown(options.maxWriteBytes ?? 4 * 1024 * 1024);
  const clearThreshold = options.clearThresholdBytes ?? 64 * 1024;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  if (maxWrite < PAGE_SIZE) throw new RangeError(`maxWriteBytes must be at least ${PAGE_SIZE}`);
  if (!Number.isSafeInteger(diskSize) || diskSize <= 0 || diskSize % PAGE_SIZE !== 0) {
    throw new RangeError(`disk size ${diskSize} must be a positive multiple of ${PAGE_SIZE}`);
  }
  // Validate everything before touching the target, so a bad record leaves the replica as it was.
  for (const r of records) {
    if (r.diskIndex !== diskIndex || isMarker(r)) continue;
    const { start, end } = recordRange(r);
    if (end > diskSize) {
      throw new RangeError(
        `record ${r.sequence} writes bytes [${start}, ${end}) of disk ${diskIndex}, beyond its size ${diskSize}`,
      );
    }
  }

  const extents = coalesceWrites(records, diskIndex);
  const stats: ApplyStats = { extents: extents.length, readCalls: 0, bytesRead: 0, writeCalls: 0, bytesWritten: 0, clearCalls: 0, bytesCleared: 0 };

  // Group extents whose page-widened ranges touch or overlap: they share edge pages.
  const runs: { start: number; end: number; extents: Extent[] }[] = [];
  for (const e of extents) {
    const s = alignDown(e.offset);
    const en = alignUp(e.offset + e.length);
    const last = runs[runs.length - 1];
    if (last && s <= last.end) {
      last.end = Math.max(last.end, en);
      last.extents.push(e);
    } else {
      runs.push({ start: s, end: en, extents: [e] });
    }
  }

  // Carve long aligned zero stretches out of each run; what is left is written.
  const clears: ByteRange[] = [];
  let writes: WriteRange[] = [];
  for (const run of runs) {
    let pos = run.start;
    const cut = (end: number) => {
      if (end > pos) {
        const ex = run.extents.filter((e) => e.offset < end && e.offset + e.length > pos);
        writes.push({ start: pos, end, extents: ex, reads: unknownEdgeReads(pos, end, ex, options.known && ((s, e) => options.known!.missing(s, e))) });
      }
    };
    for (const e of run.extents) {
      if (e.data !== null) continue;
      const cs = alignUp(e.offset);
      const ce = alignDown(e.offset + e.length);
      if (ce - cs < clearThreshold) continue;
      cut(cs);
      clears.push({ start: cs, end: ce });
      pos = ce;
    }
    cut(run.end);
  }

  if (options.blocks) {
    const cost = options.blocks.cost;
    writes = planBlocks(writes, clears, diskSize, {
      maxBlockBytes: Math.min(maxWrite, options.blocks.maxBlockBytes ?? maxWrite),
      minBlockBytes: Math.max(PAGE_SIZE, options.blocks.minBlockBytes ?? 64 * 1024),
      maxWriteBytes: maxWrite,
      cost: (kind, bytes) => cost.cost(kind, bytes),
      missing: options.known && ((start, end) => options.known!.missing(start, end)),
    });
  }
  const timed = async <T>(kind: "read" | "write", bytes: number, call: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await call();
    options.blocks?.cost.observe(kind, bytes, (performance.now() - t0) / 1000);
    return out;
  };
  const pool = options.buffers;
  const known = options.known;

  // Each chunk of a write is built in one buffer: its reads land there first (every page the
  // records do not fully cover is read; writes are disjoint, so no read sees another write's
  // result), then the records' bytes go over them, then it is written. Reads go straight into
  // the (reused) buffer when the target can.
  const tasks: (() => Promise<void>)[] = clears.map((c) => async () => {
    known?.forget(c.start, c.end - c.start);
    await target.clearPages(c.start, c.end - c.start);
    options.observer?.clear?.(c.start, c.end - c.start);
    stats.clearCalls++;
    stats.bytesCleared += c.end - c.start;
  });
  for (const w of writes) {
    for (let cs = w.start; cs < w.end; cs += maxWrite) {
      const ce = Math.min(cs + maxWrite, w.end);
      tasks.push(async () => {
        const buf = pool ? pool.take(ce - cs) : Buffer.allocUnsafe(ce - cs);
        let reads = w.reads.filter((r) => r.end > cs && r.start < ce).map((r) => ({ start: Math.max(r.start, cs), end: Math.min(r.end, ce) }));
        // Known bytes of the pages the records leave uncovered; the reads bring the rest, and
        // whatever was known when the pass was planned but has been evicted since.
        const copied: ByteRange[] = [];
        if (known) {
          const gaps = edgeReads(cs, ce, w.extents);
          for (const gap of gaps) copied.push(...known.copyKnown(gap.start, buf.subarray(gap.start - cs, gap.end - cs)));
          const lost = subtractRanges(subtractRanges(gaps, copied), reads);
          if (lost.length > 0) reads = mergeRanges([...reads, ...lost]);
        }
        await Promise.all(
          reads.map(async (r) => {
            const view = buf.subarray(r.start - cs, r.end - cs);
            await timed("read", view.length, async () => {
              if (target.readPagesInto) return target.readPagesInto(r.start, view);
              const data = await target.readPages(r.start, view.length);
              if (data.length !== view.length) throw new Error(`target returned ${data.length} bytes for a ${view.length}-byte read at ${r.start}`);
              data.copy(view);
            });
            options.observer?.read?.(r.start, view);
            known?.learn(r.start, view);
            stats.readCalls++;
            stats.bytesRead += view.length;
          }),
        );
        const changed: { offset: number; length: number }[] = [];
        for (const x of w.extents) {
          const s = Math.max(x.offset, cs);
          const e = Math.min(x.offset + x.length, ce);
          if (e <= s) continue;
          if (x.data) copyExtent(x, buf, s - cs, s - x.offset, e - x.offset);
          else buf.fill(0, s - cs, e - cs);
          changed.push({ offset: s, length: e - s });
        }
        zeroUncovered(buf, cs, copied.length > 0 ? mergeRanges([...reads, ...copied]) : reads, changed);
        try {
          await timed("write", buf.length, () => target.writePages(cs, buf));
        } catch (err) {
          // The range may hold the old bytes or the new. (Other calls of this apply touch other
          // pages, so what they take from the cache meanwhile is unaffected.)
          known?.forget(cs, ce - cs);
          throw err;
        }
        known?.learn(cs, buf);
        options.observer?.write?.(cs, buf, changed);
        stats.writeCalls++;
        stats.bytesWritten += buf.length;
        // Only after success: a failed call's request may still hold it.
        pool?.give(buf);
      });
    }
  }
  await runLimited(tasks, concurrency, (task) => task());
  return stats;
}

/** The parts of the sorted, disjoint ranges `from` outside the sorted, disjoint ranges `less`. */
function subtractRanges(from: readonly ByteRange[], less: readonly ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  let j = 0;
  for (const r of from) {
    let pos = r.start;
    while (j < less.length && less[j]!.end <= pos) j++;
    for (let k = j; k < less.length && less[k]!.start < r.end; k++) {
      if (less[k]!.start > pos) out.push({ start: pos, end: less[k]!.start });
      pos = Math.max(pos, less[k]!.end);
    }
    if (pos < r.end) out.push({ start: pos, end: r.end });
  }
  return out;
}

/** Ranges in any order, overlapping or touching ones joined, sorted. */
function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  ranges.sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/**
 * Zeros whatever part of a chunk buffer neither a read (or known bytes) nor a record filled (by
 * construction nothing: the reads and known bytes cover every page the records leave uncovered;
 * a reused buffer must still never leak old bytes into the replica).
 */
function zeroUncovered(buf: Buffer, at: number, reads: readonly ByteRange[], changed: readonly { offset: number; length: number }[]): void {
  let pos = at;
  let i = 0;
  let j = 0;
  const end = at + buf.length;
  while (pos < end) {
    // The next range (of either sorted list) that reaches past pos.
    while (i < reads.length && reads[i]!.end <= pos) i++;
    while (j < changed.length && changed[j]!.offset + changed[j]!.length <= pos) j++;
    const rs = i < reads.length ? reads[i]!.start : end;
    const cstart = j < changed.length ? changed[j]!.offset : end;
    const next = Math.min(rs, cstart);
    if (next > pos) {
      buf.fill(0, pos - at, next - at);
      pos = next;
      continue;
    }
    pos = next === rs && i < reads.length ? reads[i]!.end : changed[j]!.offset + changed[j]!.length;
  }
}
