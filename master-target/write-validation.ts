import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

/**
 * Checks a whole batch before any byte of it reaches an image, so a bad record never leaves half
 * a batch applied. Returns the records after `appliedSequence`: earlier ones are retransmissions
 * and are skipped, which makes a resumed stream idempotent.
 */
export function freshWrites(records: WriteRecord[], diskSize: (index: number) => number | undefined, appliedSequence: number): WriteRecord[] {
  let expected = appliedSequence + 1;
  const fresh: WriteRecord[] = [];
  for (const r of records) {
    if (!Number.isSafeInteger(r.sequence) || r.sequence < 1) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `record with sequence ${r.sequence}: sequences start at 1`);
    }
    if (r.sequence < expected) {
      // Already applied (or repeated within this batch): only in-order duplicates are harmless.
      if (r.sequence > appliedSequence) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `record ${r.sequence} is out of order: expected ${expected}; send records in sequence order`);
      }
      continue;
    }
    if (r.sequence > expected) {
      throw new SrlabError(
        ErrorCode.BROKEN_CHAIN,
        `sequence gap: the master target has applied up to ${expected - 1} but the next record is ${r.sequence}; resync the machine`,
      );
    }
    checkRecord(r, diskSize);
    fresh.push(r);
    expected++;
  }
  return fresh;
}

function checkRecord(r: WriteRecord, diskSize: (index: number) => number | undefined): void {
  const at = `record ${r.sequence}`;
  switch (r.kind) {
    case WriteKind.WRITE_KIND_TAG:
    case WriteKind.WRITE_KIND_BASE:
      return;
    case WriteKind.WRITE_KIND_DATA:
      if (r.data.length !== r.length) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${at}: length says ${r.length} bytes but the record carries ${r.data.length}`);
      }
      break;
    case WriteKind.WRITE_KIND_ZERO:
      if (r.data.length > 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${at}: a ZERO record carries no data (got ${r.data.length} bytes)`);
      break;
    default:
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${at}: unknown write kind ${r.kind}`);
  }
  const size = diskSize(r.diskIndex);
  if (size === undefined) {
    throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `${at}: disk ${r.diskIndex} is not part of this machine's prepared target`);
  }
  if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${at}: offset ${r.offset} / length ${r.length} are not valid byte positions`);
  }
  if (r.offset + r.length > size) {
    throw new SrlabError(
      ErrorCode.OUT_OF_RANGE,
      `${at}: bytes ${r.offset}..${r.offset + r.length} lie outside disk ${r.diskIndex} (${size} bytes)`,
    );
  }
}
