const ZEROS = Buffer.alloc(64 * 1024);

/** True when every byte is zero (holes, trimmed and never-written blocks). Compares in 64 KiB chunks. */
export function isZero(bytes: Uint8Array): boolean {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < buf.length; at += ZEROS.length) {
    const end = Math.min(at + ZEROS.length, buf.length);
    if (!buf.subarray(at, end).equals(ZEROS.subarray(0, end - at))) return false;
  }
  return true;
}
