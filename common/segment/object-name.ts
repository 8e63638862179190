const PAD = 20; // u64 max has 20 digits, so names sort by sequence lexicographically.
const NAME_RE = /^machines\/([^/]+)\/log\/(\d{20})-(\d{20})\.seg$/;

function pad(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`sequence must be a non-negative safe integer, got ${n}`);
  return String(n).padStart(PAD, "0");
}

/** Blob name of a segment: `machines/<id>/log/<first>-<last>.seg`, zero padded to 20 digits. */
export function segmentObjectName(machineId: string, firstSequence: number, lastSequence: number): string {
  if (!machineId || machineId.includes("/")) throw new RangeError(`machine id "${machineId}" is not usable in a blob name`);
  if (lastSequence < firstSequence) throw new RangeError(`segment range ${firstSequence}-${lastSequence} is empty`);
  return `machines/${machineId}/log/${pad(firstSequence)}-${pad(lastSequence)}.seg`;
}

/** Inverse of segmentObjectName; undefined for names that are not segments (listings hold others). */
export function parseSegmentObjectName(
  name: string,
): { machineId: string; firstSequence: number; lastSequence: number } | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const firstSequence = Number(m[2]);
  const lastSequence = Number(m[3]);
  if (!Number.isSafeInteger(firstSequence) || !Number.isSafeInteger(lastSequence) || lastSequence < firstSequence) {
    return undefined;
  }
  return { machineId: m[1]!, firstSequence, lastSequence };
}
