import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { WriteKind, type WriteRecord } from "../../proto/index.js";
import type { ReplicaDisk } from "../machine-registry.js";

/**
 * Checks a whole batch before any of it is appended, so a bad record never leaves half a batch in
 * the cache. Returns the records after `lastSequence` (earlier ones are retransmissions).
 */
export function validateBatch(
  records: WriteRecord[],
  disk: (index: number) => ReplicaDisk | undefined,
  lastSequence: number,
): WriteRecord[] {
  if (records.length === 0) return [];
  const first = records[0]!.sequence;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (!Number.isSafeInteger(r.sequence) || r.sequence < 1) {
      throw invalid(`record ${i} has sequence ${r.sequence}; sequences start at 1`);
    }
    if (r.sequence !== first + i) {
      throw invalid(`batch is not contiguous: record ${i} has sequence ${r.sequence}, expected ${first + i}`);
    }
    validateRecord(r, disk);
  }
  if (first > lastSequence + 1) {
    throw new SrlabError(
      ErrorCode.BROKEN_CHAIN,
      `sequence gap: the process server holds up to ${lastSequence} but the batch starts at ${first}; the machine needs a resync`,
    );
  }
  return first > lastSequence ? records : records.filter((r) => r.sequence > lastSequence);
}

function validateRecord(r: WriteRecord, disk: (index: number) => ReplicaDisk | undefined): void {
  const at = `record ${r.sequence}`;
  switch (r.kind) {
    case WriteKind.WRITE_KIND_TAG:
      if (r.data.length > 0) throw invalid(`${at}: a TAG record carries no data`);
      return;
    case WriteKind.WRITE_KIND_BASE:
      if (r.data.length > 0) throw invalid(`${at}: a BASE record carries no data`);
      if (!disk(r.diskIndex)) throw invalid(`${at}: BASE record for disk ${r.diskIndex}, which was not declared when the stream was opened`);
      return;
    case WriteKind.WRITE_KIND_DATA:
      if (r.data.length !== r.length) throw invalid(`${at}: length says ${r.length} bytes but the record carries ${r.data.length}`);
      break;
    case WriteKind.WRITE_KIND_ZERO:
      if (r.data.length > 0) throw invalid(`${at}: a ZERO record carries no data (got ${r.data.length} bytes)`);
      break;
    default:
      throw invalid(`${at}: unknown write kind ${r.kind}`);
  }
  const d = disk(r.diskIndex);
  if (!d) throw invalid(`${at}: disk index ${r.diskIndex} was not declared when the stream was opened`);
  if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
    throw invalid(`${at}: offset ${r.offset} / length ${r.length} are not valid byte positions`);
  }
  if (r.offset + r.length > d.sizeBytes) {
    throw new SrlabError(
      ErrorCode.OUT_OF_RANGE,
      `${at}: bytes ${r.offset}..${r.offset + r.length} lie outside disk ${r.diskIndex} (${d.sizeBytes} bytes)`,
    );
  }
}

function invalid(message: string): SrlabError {
  return new SrlabError(ErrorCode.INVALID_ARGUMENT, message);
}
