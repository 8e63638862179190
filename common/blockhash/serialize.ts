import { ChecksumAlgorithm } from "../../proto/index.js";
import { BlockHashTree, type TreeSummary } from "./block-hash-tree.js";

/**
 * Binary forms, big-endian: a 4-byte magic, a version byte, a kind byte, an algorithm byte (0:
 * SHA-256, as before the byte was used; 2: XXH3-128), a reserved byte, u32 page size, u64 disk
 * size, then for a tree every leaf hash (the interior is rebuilt on load), for a summary a u32
 * level and that level's hashes.
 */
const MAGIC = Buffer.from("SRBH", "ascii");
const VERSION = 1;
const KIND_TREE = 1;
const KIND_SUMMARY = 2;
const HEADER_BYTES = 20;

function header(kind: number, pageSize: number, sizeBytes: number, algorithm = ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h.writeUInt8(VERSION, 4);
  h.writeUInt8(kind, 5);
  h.writeUInt8(algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256 ? 0 : algorithm, 6);
  h.writeUInt32BE(pageSize, 8);
  h.writeBigUInt64BE(BigInt(sizeBytes), 12);
  return h;
}

function readHeader(buf: Buffer, kind: number): { pageSize: number; sizeBytes: number; algorithm: ChecksumAlgorithm } {
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 4).equals(MAGIC)) throw new Error("not a serialized block-hash tree");
  if (buf.readUInt8(4) !== VERSION) throw new Error(`block-hash format version ${buf.readUInt8(4)} is not supported`);
  if (buf.readUInt8(5) !== kind) throw new Error(`expected a block-hash ${kind === KIND_TREE ? "tree" : "summary"}`);
  const code = buf.readUInt8(6);
  if (code !== 0 && code !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128) throw new Error(`block-hash algorithm ${code} is not supported`);
  const algorithm = code === 0 ? ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256 : ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128;
  return { pageSize: buf.readUInt32BE(8), sizeBytes: Number(buf.readBigUInt64BE(12)), algorithm };
}

export function serializeTree(tree: BlockHashTree): Buffer {
  return Buffer.concat([header(KIND_TREE, tree.pageSize, tree.sizeBytes, tree.algorithm), tree.leaves()]);
}

export function deserializeTree(buf: Buffer): BlockHashTree {
  const { pageSize, sizeBytes, algorithm } = readHeader(buf, KIND_TREE);
  const tree = new BlockHashTree({ pageSize, sizeBytes, algorithm });
  tree.loadLeaves(buf.subarray(HEADER_BYTES));
  return tree;
}

export function serializeSummary(summary: TreeSummary): Buffer {
  const level = Buffer.alloc(4);
  level.writeUInt32BE(summary.level);
  return Buffer.concat([header(KIND_SUMMARY, summary.pageSize, summary.sizeBytes), level, summary.nodes]);
}

export function deserializeSummary(buf: Buffer): TreeSummary {
  const { pageSize, sizeBytes } = readHeader(buf, KIND_SUMMARY);
  if (buf.length < HEADER_BYTES + 4 || (buf.length - HEADER_BYTES - 4) % 32 !== 0) throw new Error("truncated block-hash summary");
  return { pageSize, sizeBytes, level: buf.readUInt32BE(HEADER_BYTES), nodes: Buffer.from(buf.subarray(HEADER_BYTES + 4)) };
}
