import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { BlockChecksum } from "../proto/index.js";

/** The proto allows at most this many checksums per message. */
export const CHECKSUMS_PER_MESSAGE = 1024;

/**
 * SHA-256 of each fixed-size block of an image, in chunks of at most `perMessage`. The last block
 * may be short (hashed as it is); an all-zero block gets an empty checksum, the "unallocated" mark
 * resync compares against.
 */
export async function* blockChecksums(
  path: string,
  sizeBytes: number,
  blockSize: number,
  perMessage = CHECKSUMS_PER_MESSAGE,
): AsyncGenerator<BlockChecksum[]> {
  const totalBlocks = Math.ceil(sizeBytes / blockSize);
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(blockSize);
    const zeros = Buffer.alloc(blockSize);
    let chunk: BlockChecksum[] = [];
    for (let index = 0; index < totalBlocks; index++) {
      const offset = index * blockSize;
      const length = Math.min(blockSize, sizeBytes - offset);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      // A file shorter than the disk reads as zeros past its end, like the sparse hole it stands for.
      if (bytesRead < length) buffer.fill(0, bytesRead, length);
      const block = buffer.subarray(0, length);
      const sha256 = block.equals(zeros.subarray(0, length)) ? Buffer.alloc(0) : createHash("sha256").update(block).digest();
      chunk.push({ blockIndex: index, sha256 });
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
