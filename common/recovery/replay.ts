import { ErrorCode, SrlabError } from "../errors/index.js";
import { isMarker } from "../replica/index.js";
import type { WriteRecord } from "../../proto/index.js";
import type { SegmentRef } from "./segment-catalog.js";
import { readSegments, type SegmentReaderOptions } from "./segment-reader.js";

export interface ReplayRangeOptions extends SegmentReaderOptions {
  segments: SegmentRef[];
  /** Replays the records with after < sequence <= upTo. */
  after: number;
  upTo: number;
  /** Payload bytes gathered before a batch is handed on: bigger batches coalesce more overwrites. */
  batchBytes?: number;
  /** Receives the writes (no TAGs) in sequence order, several segments per call. */
  apply: (records: WriteRecord[]) => Promise<void>;
  onSegment?: (done: number, total: number) => void;
  /** Sees the TAG and BASE records, in order with the writes (after the writes before them are applied). */
  onMarker?: (record: WriteRecord) => void;
}

const DEFAULT_BATCH_BYTES = 32 * 1024 * 1024;

/**
 * Feeds every write of (after, upTo] from the log segments to `apply`, checking that the run is
 * complete: a missing sequence would silently produce a disk that never existed.
 */
export async function replayRange(o: ReplayRangeOptions): Promise<{ records: number }> {
  const limit = o.batchBytes ?? DEFAULT_BATCH_BYTES;
  let expected = o.after + 1;
  let batch: WriteRecord[] = [];
  let batchBytes = 0;
  let applied = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const records = batch;
    batch = [];
    batchBytes = 0;
    await o.apply(records);
    applied += records.length;
  };
  let done = 0;
  for await (const { records } of readSegments(o, o.segments)) {
    for (const r of records) {
      if (r.sequence < expected) continue; // overlap with the previous segment
      if (r.sequence > o.upTo) break;
      if (r.sequence !== expected) {
        throw new SrlabError(ErrorCode.OUT_OF_RANGE, `segments for sequences ${expected}..${r.sequence - 1} are no longer in storage`);
      }
      expected++;
      if (isMarker(r)) {
        o.onMarker?.(r);
        continue;
      }
      batch.push(r);
      batchBytes += r.data.length + 64;
    }
    if (batchBytes >= limit) await flush();
    o.onSegment?.(++done, o.segments.length);
  }
  if (expected <= o.upTo) {
    throw new SrlabError(ErrorCode.OUT_OF_RANGE, `segments for sequences ${expected}..${o.upTo} are no longer in storage`);
  }
  await flush();
  return { records: applied };
}
