import { logPrefix, parseSegmentObjectName } from "../storage-layout/index.js";
import type { BlobStore } from "../storage/index.js";

/** A log segment object in storage, known by its name alone (no download). */
export interface SegmentRef {
  name: string;
  firstSequence: number;
  lastSequence: number;
}

export function segmentRefOf(name: string): SegmentRef | undefined {
  const parsed = parseSegmentObjectName(name);
  return parsed && { name, firstSequence: parsed.firstSequence, lastSequence: parsed.lastSequence };
}

/** The machine's segments by first sequence (longest first on ties: an uploader may re-cut a run after a restart). */
export async function listSegments(store: BlobStore, machineId: string): Promise<SegmentRef[]> {
  const refs: SegmentRef[] = [];
  for (const info of await store.listObjects(logPrefix(machineId))) {
    const parsed = parseSegmentObjectName(info.name);
    if (parsed?.machineId === machineId) refs.push({ name: info.name, firstSequence: parsed.firstSequence, lastSequence: parsed.lastSequence });
  }
  return refs.sort((a, b) => a.firstSequence - b.firstSequence || b.lastSequence - a.lastSequence);
}

export type Coverage = { ok: true; segments: SegmentRef[]; end: number } | { ok: false; segments: SegmentRef[]; end: number; missingFrom: number; missingTo: number };

/**
 * The fewest segments that together hold every sequence of (after, upTo], in replay order, or
 * where the first hole is (`segments`/`end` then describe the part before it). Overlapping
 * segments are fine; they are picked greedily by how far they reach.
 */
export function coverRange(sorted: SegmentRef[], after: number, upTo: number): Coverage {
  const chosen: SegmentRef[] = [];
  let end = after;
  let i = 0;
  while (end < upTo) {
    let best: SegmentRef | undefined;
    while (i < sorted.length && sorted[i]!.firstSequence <= end + 1) {
      const s = sorted[i++]!;
      if (s.lastSequence > end && (!best || s.lastSequence > best.lastSequence)) best = s;
    }
    if (!best) {
      const next = sorted.slice(i).find((s) => s.lastSequence > end);
      const missingTo = Math.min(upTo, next ? next.firstSequence - 1 : upTo);
      return { ok: false, segments: chosen, end, missingFrom: end + 1, missingTo };
    }
    chosen.push(best);
    end = best.lastSequence;
  }
  return { ok: true, segments: chosen, end };
}

/** End of the unbroken run of segments that continues right after `after` (`after` itself when none does). */
export function runEnd(sorted: SegmentRef[], after: number): number {
  return coverRange(sorted, after, Number.MAX_SAFE_INTEGER).end;
}

/** The segment holding `sequence`, if storage still has one. */
export function segmentHolding(sorted: SegmentRef[], sequence: number): SegmentRef | undefined {
  return sorted.find((s) => s.firstSequence <= sequence && sequence <= s.lastSequence);
}
