import { xxh3 } from "@node-rs/xxhash";
import { isZero } from "../bytes/index.js";
import { ErrorCode, SrlabError } from "../errors/index.js";
import { ChecksumAlgorithm } from "../../proto/index.js";
import { sha256 } from "./sha256.js";

/**
 * The digests a resync compares: one per fixed block, and optionally one per page inside it. Both
 * sides (the agent, and the process server or master target holding the replica) compute them
 * with this module, so they agree by construction. Comparison needs no cryptographic strength:
 * XXH3-128 is several times cheaper than SHA-256, which stays available for the proofs.
 */

export const XXH3_128_BYTES = 16;

/** Byte length of one digest of this algorithm. */
export function digestLength(algorithm: ChecksumAlgorithm): number {
  return algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 ? XXH3_128_BYTES : 32;
}

/** XXH3-128 of the bytes, big-endian. */
export function xxh3128(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(XXH3_128_BYTES);
  const value = xxh3.xxh128(data);
  out.writeBigUInt64BE(value >> 64n, 0);
  out.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, 8);
  return out;
}

/** The digest of any bytes by the algorithm (no zero shortcut). */
export function digestOf(algorithm: ChecksumAlgorithm, data: Buffer): Buffer {
  return algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 ? xxh3128(data) : sha256(data);
}

/** A block's digest; empty for an all-zero block, the mark for "unallocated" on the replica. */
export function blockDigest(algorithm: ChecksumAlgorithm, block: Buffer): Buffer {
  return isZero(block) ? Buffer.alloc(0) : digestOf(algorithm, block);
}

/** The digests of each `pageSize` page of a block, packed in order; the last page may be short. */
export function pageDigests(algorithm: ChecksumAlgorithm, block: Buffer, pageSize: number): Buffer {
  const size = digestLength(algorithm);
  const pages = Math.ceil(block.length / pageSize);
  const out = Buffer.allocUnsafe(pages * size);
  for (let p = 0; p < pages; p++) {
    digestOf(algorithm, block.subarray(p * pageSize, Math.min(block.length, (p + 1) * pageSize))).copy(out, p * size);
  }
  return out;
}

/** What a checksum request asks for, as both servers take it. */
export interface ChecksumRequest {
  blockSize: number;
  algorithm: ChecksumAlgorithm;
  /** 0: block digests only. */
  pageSize: number;
}

/**
 * A checksum request from the wire, checked: an unknown algorithm or a page size that cannot
 * split the block is one INVALID_ARGUMENT; unspecified means SHA-256, as before the field existed.
 */
export function checksumRequest(wire: ChecksumRequest): ChecksumRequest {
  const { blockSize, pageSize } = wire;
  let algorithm = wire.algorithm;
  if (algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_UNSPECIFIED) algorithm = ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256;
  if (algorithm !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256 && algorithm !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `unknown checksum algorithm ${wire.algorithm}`);
  }
  if (pageSize !== 0 && (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0)) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `page_size must be 0 or a power of two of at least 512 bytes, got ${pageSize}`);
  }
  if (pageSize > blockSize) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `page_size ${pageSize} is larger than block_size ${blockSize}`);
  return { blockSize, algorithm, pageSize };
}
