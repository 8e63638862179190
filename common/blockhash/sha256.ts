import * as crypto from "node:crypto";

/**
 * One-shot SHA-256. `crypto.hash` skips the Hash object that `createHash` allocates, which is
 * about half the cost of hashing a 64-byte interior node; older Node lacks it.
 */
const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: "buffer") => Buffer }).hash;

export const sha256: (data: Buffer) => Buffer = oneShot
  ? (data) => oneShot("sha256", data, "buffer")
  : (data) => crypto.createHash("sha256").update(data).digest();

export const HASH_BYTES = 32;
