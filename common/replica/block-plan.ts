import type { Extent } from "./coalesce.js";
import { alignDown, alignUp } from "./page-target.js";

export interface ByteRange {
  start: number;
  end: number;
}

/** A page-aligned stretch to write, with the ranges it must first read from the target. */
export interface WriteRange extends ByteRange {
  extents: Extent[];
  reads: ByteRange[];
}

export interface BlockPlanOptions {
  /** Largest block written whole (page blobs take at most 4 MiB per call). */
  maxBlockBytes: number;
  /** Smallest block considered; blocks are maxBlockBytes / 4^k down to this. */
  minBlockBytes: number;
  /** Estimated seconds of one call of `bytes`. */
  cost: (kind: "read" | "write", bytes: number) => number;
  /** Largest single write call. */
  maxWriteBytes: number;
  /**
   * The parts of a range whose bytes are not known without reading the target (a block cache);
   * absent: nothing is known. Known bytes cost no read, so a cached block is rewritten whole for
   * the price of its write alone.
   */
  missing?: (start: number, end: number) => ByteRange[];
}

/** Pages of [start, end) that the extents do not fully cover, merged into contiguous reads. */
export function edgeReads(start: number, end: number, extents: readonly Extent[]): ByteRange[] {
  const reads: ByteRange[] = [];
  const addGap = (gs: number, ge: number) => {
    if (ge <= gs) return;
    const rs = alignDown(gs);
    const re = alignUp(ge);
    const last = reads[reads.length - 1];
    if (last && last.end >= rs) last.end = Math.max(last.end, re);
    else reads.push({ start: rs, end: re });
  };
  let pos = start;
  for (const e of extents) {
    const es = Math.max(e.offset, start);
    const ee = Math.min(e.offset + e.length, end);
    if (ee <= es) continue;
    addGap(pos, es);
    pos = Math.max(pos, ee);
  }
  addGap(pos, end);
  return reads;
}

/** The edge reads of [start, end) less what `missing` says is known. */
export function unknownEdgeReads(start: number, end: number, extents: readonly Extent[], missing?: BlockPlanOptions["missing"]): ByteRange[] {
  const reads = edgeReads(start, end, extents);
  return missing ? reads.flatMap((r) => missing(r.start, r.end)) : reads;
}

/** The part of a write range inside [start, end), with its own edge reads. */
function slice(w: WriteRange, start: number, end: number, missing: BlockPlanOptions["missing"]): WriteRange {
  const s = Math.max(w.start, start);
  const e = Math.min(w.end, end);
  const extents = w.extents.filter((x) => x.offset < e && x.offset + x.length > s);
  return { start: s, end: e, extents, reads: unknownEdgeReads(s, e, extents, missing) };
}

function callsCost(cost: BlockPlanOptions["cost"], kind: "read" | "write", bytes: number, maxCall: number): number {
  let total = 0;
  for (let left = bytes; left > 0; left -= maxCall) total += cost(kind, Math.min(left, maxCall));
  return total;
}

/** What writing the ranges one by one costs: one call per range (chunked), plus their edge reads. */
function pageWiseCost(ranges: readonly WriteRange[], o: BlockPlanOptions): number {
  let total = 0;
  for (const r of ranges) {
    total += callsCost(o.cost, "write", r.end - r.start, o.maxWriteBytes);
    for (const rd of r.reads) total += o.cost("read", rd.end - rd.start);
  }
  return total;
}

interface Choice {
  cost: number;
  ranges: WriteRange[];
}

/**
 * Chooses, region by region, between writing each run of a batch on its own (one call per run,
 * only its edge pages read) and writing whole aligned blocks (one read of the block unless the
 * batch covers all of it, one write), whichever the cost model says is cheaper. Blocks nest:
 * a maxBlockBytes block, its quarters, theirs, … down to minBlockBytes; blocks are clipped at
 * the disk's end. Regions touched by a clear are left page-wise (clears run beside the writes
 * and must not overlap them). Returns ranges sorted by start, disjoint, within the disk.
 */
export function planBlocks(writes: readonly WriteRange[], clears: readonly ByteRange[], diskSize: number, o: BlockPlanOptions): WriteRange[] {
  if (writes.length === 0) return [];
  const list = [...writes];
  const top = o.maxBlockBytes;
  const out: WriteRange[] = [];
  let i = 0;
  let c = 0;
  while (i < list.length) {
    const bs = Math.floor(list[i]!.start / top) * top;
    const be = Math.min(bs + top, diskSize);
    // Everything of this top block; a range crossing its end is split there.
    const inside: WriteRange[] = [];
    while (i < list.length && list[i]!.start < be) {
      const w = list[i]!;
      if (w.end <= be) {
        inside.push(w);
        i++;
      } else {
        inside.push(slice(w, w.start, be, o.missing));
        // The rest stays in the list for the next block.
        list[i] = slice(w, be, w.end, o.missing);
      }
    }
    while (c < clears.length && clears[c]!.end <= bs) c++;
    const blockClears: ByteRange[] = [];
    for (let k = c; k < clears.length && clears[k]!.start < be; k++) blockClears.push(clears[k]!);
    out.push(...choose(bs, be, inside, blockClears, top, o).ranges);
  }
  return mergeAdjacent(out, o.maxWriteBytes);
}

function choose(bs: number, be: number, ranges: WriteRange[], clears: ByteRange[], size: number, o: BlockPlanOptions): Choice {
  if (ranges.length === 0) return { cost: 0, ranges: [] };
  let best: Choice = { cost: pageWiseCost(ranges, o), ranges };
  if (ranges.length === 1 && ranges[0]!.reads.length === 0) return best; // nothing a block could save
  const clearInside = clears.some((x) => x.start < be && x.end > bs);
  if (!clearInside) {
    const extents = ranges.flatMap((r) => r.extents.filter((x) => x.offset < be && x.offset + x.length > bs));
    const covered = ranges.reduce((n, r) => n + (r.end - r.start), 0) === be - bs && ranges.every((r) => r.reads.length === 0);
    // One read of the whole block, or of each unknown stretch the records leave uncovered.
    const reads = covered ? [] : o.missing ? o.missing(bs, be).filter((r) => edgeReads(r.start, r.end, extents).length > 0) : [{ start: bs, end: be }];
    const blockCost = o.cost("write", be - bs) + reads.reduce((n, r) => n + o.cost("read", r.end - r.start), 0);
    if (blockCost < best.cost) best = { cost: blockCost, ranges: [{ start: bs, end: be, extents, reads }] };
  }
  const quarter = size / 4;
  if (quarter >= o.minBlockBytes && ranges.length > 1) {
    let cost = 0;
    const parts: WriteRange[] = [];
    for (let qs = bs; qs < be && cost < best.cost; qs += quarter) {
      const qe = Math.min(qs + quarter, be);
      const inQuarter = ranges.filter((r) => r.start < qe && r.end > qs).map((r) => (r.start >= qs && r.end <= qe ? r : slice(r, qs, qe, o.missing)));
      const sub = choose(qs, qe, inQuarter, clears, quarter, o);
      cost += sub.cost;
      parts.push(...sub.ranges);
    }
    if (cost < best.cost) best = { cost, ranges: parts };
  }
  return best;
}

/** Ranges that touch become one (one read of the union, one write chunked by maxWriteBytes). */
function mergeAdjacent(ranges: WriteRange[], maxWriteBytes: number): WriteRange[] {
  const out: WriteRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.end === r.start && r.end - last.start <= maxWriteBytes) {
      last.end = r.end;
      last.extents = [...last.extents, ...r.extents];
      const reads = [...last.reads];
      for (const rd of r.reads) {
        const lr = reads[reads.length - 1];
        if (lr && lr.end >= rd.start) lr.end = Math.max(lr.end, rd.end);
        else reads.push({ ...rd });
      }
      last.reads = reads;
    } else {
      out.push({ ...r, reads: r.reads.map((x) => ({ ...x })) });
    }
  }
  return out;
}
