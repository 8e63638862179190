/** A byte range of a disk: where two trees differ, or what a resync must send. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** "bytes 12288-16383 (4096 bytes)": how a mismatch is named to people. */
export function formatByteRange(r: ByteRange): string {
  return `bytes ${r.offset}-${r.offset + r.length - 1} (${r.length} bytes)`;
}

/** Appends [offset, offset+length) to sorted `out`, merging with the last range when they touch. */
export function appendRange(out: ByteRange[], offset: number, length: number): void {
  const last = out[out.length - 1];
  if (last && last.offset + last.length === offset) last.length += length;
  else out.push({ offset, length });
}
