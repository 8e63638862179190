import { xxh3 } from "@node-rs/xxhash";

export const XXH3_128_BYTES = 16;

/** XXH3-128 of the bytes, big-endian. */
export function xxh3128(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(XXH3_128_BYTES);
  const value = xxh3.xxh128(data);
  out.writeBigUInt64BE(value >> 64n, 0);
  out.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, 8);
  return out;
}
