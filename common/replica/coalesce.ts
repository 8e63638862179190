import { WriteKind, type WriteRecord } from "../../proto/index.js";
import { isMarker } from "./markers.js";

/**
 * A byte range of the final image after a batch. `data` holds its bytes in order as views of the
 * records' payloads (never joined: the apply copies them once, into the buffer it writes); null
 * means zeros.
 */
export interface Extent {
  offset: number;
  length: number;
  data: Buffer[] | null;
}

/** Copies bytes [from, to) of an extent with data into `target` at `at`. */
export function copyExtent(e: Extent, target: Buffer, at: number, from: number, to: number): void {
  let pos = 0;
  for (const piece of e.data ?? []) {
    const end = pos + piece.length;
    if (end > from && pos < to) {
      const s = Math.max(from, pos);
      at += piece.copy(target, at, s - pos, Math.min(to, end) - pos);
    }
    if (end >= to) return;
    pos = end;
  }
}

interface Span {
  start: number;
  end: number;
  rank: number; // position in sequence order; higher wins
  rec: WriteRecord;
}

/** Max-heap of spans by rank: the newest write covering the sweep position is on top. */
class SpanHeap {
  private readonly items: Span[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): Span | undefined {
    return this.items[0];
  }
  push(s: Span): void {
    const a = this.items;
    a.push(s);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.rank >= a[i]!.rank) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): void {
    const a = this.items;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.rank > a[m]!.rank) m = l;
      if (r < a.length && a[r]!.rank > a[m]!.rank) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}

/** Checks the fields apply depends on; returns the byte range the record covers. */
export function recordRange(r: WriteRecord): { start: number; end: number } {
  if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
    throw new RangeError(`record ${r.sequence}: offset ${r.offset} / length ${r.length} are not valid byte positions`);
  }
  if (r.kind === WriteKind.WRITE_KIND_DATA && r.data.length !== r.length) {
    throw new RangeError(`record ${r.sequence}: length says ${r.length} bytes but it carries ${r.data.length}`);
  }
  return { start: r.offset, end: r.offset + r.length };
}

/**
 * The net effect of records on one disk as sorted, non-overlapping extents: for every byte the
 * record with the highest sequence wins; ZERO records yield zero extents (never materialised, a
 * TRIM of the whole disk costs nothing). TAG records and other disks are ignored.
 */
export function coalesceWrites(records: WriteRecord[], diskIndex: number): Extent[] {
  const spans: Span[] = [];
  records.forEach((rec, i) => {
    if (rec.diskIndex !== diskIndex) return;
    if (isMarker(rec)) return;
    if (rec.kind !== WriteKind.WRITE_KIND_DATA && rec.kind !== WriteKind.WRITE_KIND_ZERO) {
      throw new TypeError(`record ${rec.sequence}: unknown write kind ${rec.kind}`);
    }
    const { start, end } = recordRange(rec);
    if (end > start) spans.push({ start, end, rank: i, rec });
  });
  if (spans.length === 0) return [];
  // Rank by sequence (array order breaks ties) so callers need not pre-sort.
  const bySeq = [...spans].sort((a, b) => a.rec.sequence - b.rec.sequence || a.rank - b.rank);
  bySeq.forEach((s, i) => {
    s.rank = i;
  });
  spans.sort((a, b) => a.start - b.start);
  const points = [...new Set(spans.flatMap((s) => [s.start, s.end]))].sort((a, b) => a - b);

  const out: Extent[] = [];
  let parts: Buffer[] = []; // pending data pieces of the last extent
  const flush = () => {
    const last = out[out.length - 1];
    if (last && parts.length) last.data = parts;
    parts = [];
  };
  const heap = new SpanHeap();
  let next = 0;
  for (let k = 0; k + 1 < points.length; k++) {
    const p = points[k]!;
    const q = points[k + 1]!;
    while (next < spans.length && spans[next]!.start <= p) heap.push(spans[next++]!);
    while (heap.size && heap.peek()!.end <= p) heap.pop();
    const win = heap.peek();
    if (!win) continue;
    const isZero = win.rec.kind === WriteKind.WRITE_KIND_ZERO;
    const last = out[out.length - 1];
    const touches = last !== undefined && last.offset + last.length === p;
    if (touches && isZero && last.data === null && parts.length === 0) {
      last.length += q - p;
    } else if (touches && !isZero && parts.length > 0) {
      parts.push(win.rec.data.subarray(p - win.start, q - win.start));
      last.length += q - p;
    } else {
      flush();
      out.push({ offset: p, length: q - p, data: null });
      if (!isZero) parts.push(win.rec.data.subarray(p - win.start, q - win.start));
    }
  }
  flush();
  return out;
}
