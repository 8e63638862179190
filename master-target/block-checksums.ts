import { open } from "node:fs/promises";
import { blockDigest, type ChecksumRequest, pageDigests } from "../common/blockhash/index.js";
import type { BlockChecksum } from "../proto/index.js";

/** The proto allows at most this many checksums per message. */
export const CHECKSUMS_PER_MESSAGE = 1024;

/**
 * The digest of each fixed-size block of an image (and of its pages, when asked), in chunks of at
 * most `perMessage`. The last block may be short (hashed as it is); an all-zero block gets an
 * empty digest, the "unallocated" mark resync compares against.
 */
export async function* blockChecksums(
  path: string,
  sizeBytes: number,
  request: ChecksumRequest,
  perMessage = CHECKSUMS_PER_MESSAGE,
): AsyncGenerator<BlockChecksum[]> {
  const { blockSize, algorithm, pageSize } = request;
  const totalBlocks = Math.ceil(sizeBytes / blockSize);
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(blockSize);
    let chunk: BlockChecksum[] = [];
    for (let index = 0; index < totalBlocks; index++) {
      const offset = index * blockSize;
      const length = Math.min(blockSize, sizeBytes - offset);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      // A file shorter than the disk reads as zeros past its end, like the sparse hole it stands for.
      if (bytesRead < length) buffer.fill(0, bytesRead, length);
      const block = buffer.subarray(0, length);
      const digest = blockDigest(algorithm, block);
      const pages = pageSize > 0 && digest.length > 0 ? pageDigests(algorithm, block, pageSize) : Buffer.alloc(0);
      chunk.push({ blockIndex: index, digest, pageDigests: pages });
      if (chunk.length === perMessage) {
        yield chunk;
        chunk = [];
      }
    }
    if (chunk.length > 0) yield chunk;
  } finally {
    await handle.close();
  }
}
