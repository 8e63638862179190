import { createXXHash128 } from "hash-wasm";

export const XXH3_128_BYTES = 16;

// One WebAssembly hasher per thread, reset for every digest. On 4–64 KiB inputs it is about three
// times as fast as the native binding used before, whose cost was mostly the call and the BigInt
// it returned (measured: 4 KiB 0.9 vs 2.1 µs, 64 KiB 7.3 vs 24.8 µs).
const hasher = await createXXHash128();

/** XXH3-128 of the bytes, big-endian (XXH3's canonical form). */
export function xxh3128(data: Uint8Array): Buffer {
  const digest = hasher.init().update(data).digest("binary");
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
}
