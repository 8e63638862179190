import { isZero } from "../bytes/index.js";
import { ErrorCode, SrlabError } from "../errors/index.js";
import { ChecksumAlgorithm } from "../../proto/index.js";
import { sha256 } from "./sha256.js";
import { XXH3_128_BYTES, xxh3128 } from "./xxh3.js";

export { XXH3_128_BYTES, xxh3128 };

/**
 * The digests a resync compares: one per fixed block, and optionally one per page inside it. Both
 * sides (the agent, and the process server or master target holding the replica) compute them
 * with this module, so they agree by construction. Comparison needs no cryptographic strength:
 * XXH3-128 is several times cheaper than SHA-256, which stays available for the proofs.
 *
 * An XXH3-128 digest of more than one 4 KiB page is not the hash of the bytes but the root of the
 * XXH3 BlockHashTree over its 4 KiB pages: the same node the process server's replica checksum map
 * holds for that block, so the map answers a resync from the digests the applier keeps, without
 * reading the replica back.
 */

/** Leaf size of the XXH3 digest tree: a page of the replica checksum map. */
export const XXH3_LEAF_BYTES = 4096;

/** Byte length of one digest of this algorithm. */
export function digestLength(algorithm: ChecksumAlgorithm): number {
  return algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 ? XXH3_128_BYTES : 32;
}

/**
 * The root of the XXH3 tree over `data`'s 4 KiB pages (a short last page hashed as it is; a node
 * without a right sibling carried up): equal to BlockHashTree's node for the same aligned span.
 */
export function xxh3TreeDigest(data: Buffer): Buffer {
  if (data.length <= XXH3_LEAF_BYTES) return xxh3128(data);
  const size = XXH3_128_BYTES;
  let count = Math.ceil(data.length / XXH3_LEAF_BYTES);
  const level = Buffer.allocUnsafe(count * size);
  for (let i = 0; i < count; i++) {
    xxh3128(data.subarray(i * XXH3_LEAF_BYTES, Math.min(data.length, (i + 1) * XXH3_LEAF_BYTES))).copy(level, i * size);
  }
  // Each level in place: parent j is written after its children 2j and 2j + 1 were read.
  while (count > 1) {
    const next = Math.ceil(count / 2);
    for (let j = 0; j < next; j++) {
      const left = 2 * j;
      if (left + 1 < count) xxh3128(level.subarray(left * size, (left + 2) * size)).copy(level, j * size);
      else level.copy(level, j * size, left * size, (left + 1) * size);
    }
    count = next;
  }
  return Buffer.from(level.subarray(0, size));
}

/** The digest of any bytes by the algorithm (no zero shortcut). */
export function digestOf(algorithm: ChecksumAlgorithm, data: Buffer): Buffer {
  return algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 ? xxh3TreeDigest(data) : sha256(data);
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
