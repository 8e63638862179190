import type { WriteRecord } from "../../proto/index.js";

/** Fixed cost counted per record on top of its payload (sequence, offset, lengths, framing). */
const RECORD_OVERHEAD = 48;

/**
 * Size of a write record as every budget counts it: the segment cut, the stream's inbox, the
 * applier's and the master target's backlogs. One definition so their limits agree.
 */
export function recordBytes(r: WriteRecord): number {
  return r.data.length + RECORD_OVERHEAD;
}
