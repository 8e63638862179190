import { PAGE_SIZE, type PageRange } from "./blob-store.js";
import { StorageError } from "./errors.js";

/** Both backends reject misaligned page I/O up front, so the directory backend can't accept what Azure would refuse. */
export function assertPageAligned(operation: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new StorageError(`${operation}: offset ${offset} and length ${length} must be non-negative integers`, { code: "InvalidRange" });
  }
  if (offset % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) {
    throw new StorageError(`${operation}: offset ${offset} and length ${length} must be multiples of ${PAGE_SIZE}`, {
      code: "InvalidPageRange",
    });
  }
}

export function assertInside(operation: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new StorageError(`${operation}: range ${offset}+${length} is outside the blob (size ${size})`, { code: "InvalidRange" });
  }
}

/**
 * Sorted, disjoint, non-adjacent set of byte ranges. Adjacent ranges are merged, which is what
 * getPageRanges promises callers.
 */
export class RangeSet {
  // Parallel arrays keep the common "append after the last range" case cheap.
  private starts: number[] = [];
  private ends: number[] = []; // exclusive

  static from(ranges: Iterable<PageRange>): RangeSet {
    const set = new RangeSet();
    for (const r of ranges) set.add(r.offset, r.length);
    return set;
  }

  get count(): number {
    return this.starts.length;
  }

  /** Index of the first range whose end is >= pos. */
  private firstEndingAtOrAfter(pos: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(offset: number, length: number): void {
    if (length <= 0) return;
    let start = offset;
    let end = offset + length;
    const i = this.firstEndingAtOrAfter(start); // touches or overlaps from here on
    let j = i;
    while (j < this.starts.length && this.starts[j]! <= end) {
      start = Math.min(start, this.starts[j]!);
      end = Math.max(end, this.ends[j]!);
      j++;
    }
    this.starts.splice(i, j - i, start);
    this.ends.splice(i, j - i, end);
  }

  remove(offset: number, length: number): void {
    if (length <= 0) return;
    const start = offset;
    const end = offset + length;
    const i = this.firstEndingAtOrAfter(start + 1); // ranges that end after start overlap
    const newStarts: number[] = [];
    const newEnds: number[] = [];
    let j = i;
    while (j < this.starts.length && this.starts[j]! < end) {
      if (this.starts[j]! < start) {
        newStarts.push(this.starts[j]!);
        newEnds.push(start);
      }
      if (this.ends[j]! > end) {
        newStarts.push(end);
        newEnds.push(this.ends[j]!);
      }
      j++;
    }
    if (j === i) return;
    this.starts.splice(i, j - i, ...newStarts);
    this.ends.splice(i, j - i, ...newEnds);
  }

  /** Drops everything at or beyond size (used when a blob shrinks). */
  truncate(size: number): void {
    this.remove(size, Number.MAX_SAFE_INTEGER - size);
  }

  toArray(): PageRange[] {
    return this.starts.map((s, k) => ({ offset: s, length: this.ends[k]! - s }));
  }

  totalBytes(): number {
    let sum = 0;
    for (let k = 0; k < this.starts.length; k++) sum += this.ends[k]! - this.starts[k]!;
    return sum;
  }
}

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: Iterable<PageRange>): PageRange[] {
  return RangeSet.from(ranges).toArray();
}

/** Splits ranges into pieces of at most maxChunk bytes, keeping order. */
export function* chunkRanges(ranges: Iterable<PageRange>, maxChunk: number): Generator<PageRange> {
  for (const r of ranges) {
    for (let off = r.offset; off < r.offset + r.length; off += maxChunk) {
      yield { offset: off, length: Math.min(maxChunk, r.offset + r.length - off) };
    }
  }
}
