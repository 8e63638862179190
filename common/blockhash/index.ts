export {
  BlockHashTree,
  type BlockHashTreeOptions,
  DEFAULT_PAGE_SIZE,
  fingerprintOf,
  type PageReader,
  type TreeSummary,
} from "./block-hash-tree.js";
export { appendRange, type ByteRange, formatByteRange } from "./byte-range.js";
export { type HashDiskOptions, hashBuffer, hashDisk, hashImageFile, type RangeReader } from "./from-image.js";
export { deserializeSummary, deserializeTree, serializeSummary, serializeTree } from "./serialize.js";
export { closePageHashWorkers, hashImagePages, type PageHashTask } from "./page-hash-workers.js";
export { HASH_BYTES, sha256 } from "./sha256.js";
export {
  blockDigest,
  type ChecksumRequest,
  checksumRequest,
  digestLength,
  digestOf,
  pageDigests,
  XXH3_128_BYTES,
  XXH3_LEAF_BYTES,
  xxh3128,
  xxh3TreeDigest,
} from "./block-digest.js";
