import * as fs from "node:fs";
import { BlockHashTree, DEFAULT_PAGE_SIZE } from "./block-hash-tree.js";

/** Reads `length` bytes at `offset` of a disk (an image file, a page blob, an NBD export). */
export type RangeReader = (offset: number, length: number) => Promise<Buffer>;

export interface HashDiskOptions {
  pageSize?: number;
  /** Bytes read per call; large reads keep storage round-trips few. Default 4 MiB. */
  chunkBytes?: number;
  /** Called after each chunk with bytes hashed so far. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** Builds the tree of a whole disk from any reader; reads are sequential and page-aligned. */
export async function hashDisk(sizeBytes: number, read: RangeReader, options: HashDiskOptions = {}): Promise<BlockHashTree> {
  const tree = new BlockHashTree({ sizeBytes, pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE });
  const chunk = Math.max(tree.pageSize, Math.floor((options.chunkBytes ?? 4 << 20) / tree.pageSize) * tree.pageSize);
  const leaves = Buffer.alloc(tree.pageCount * 32);
  for (let offset = 0; offset < sizeBytes; offset += chunk) {
    const length = Math.min(chunk, sizeBytes - offset);
    const bytes = await read(offset, length);
    if (bytes.length !== length) throw new Error(`short read at ${offset}: ${bytes.length} of ${length} bytes`);
    for (let at = 0; at < length; at += tree.pageSize) {
      const page = (offset + at) / tree.pageSize;
      tree.hashPage(bytes.subarray(at, Math.min(at + tree.pageSize, length))).copy(leaves, page * 32);
    }
    options.onProgress?.(offset + length, sizeBytes);
  }
  tree.loadLeaves(leaves);
  return tree;
}

/**
 * Builds the tree of a raw image file. `sizeBytes` defaults to the file's size; a shorter file
 * reads as zeros past its end (a sparse image that was never extended).
 */
export async function hashImageFile(path: string, options: HashDiskOptions & { sizeBytes?: number } = {}): Promise<BlockHashTree> {
  const handle = await fs.promises.open(path, "r");
  try {
    const sizeBytes = options.sizeBytes ?? (await handle.stat()).size;
    return await hashDisk(
      sizeBytes,
      async (offset, length) => {
        const buf = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) break; // past the end: the rest stays zero
          done += bytesRead;
        }
        return buf;
      },
      options,
    );
  } finally {
    await handle.close();
  }
}

/** The tree of a disk held in memory (tests, small images). */
export function hashBuffer(bytes: Buffer, pageSize = DEFAULT_PAGE_SIZE): BlockHashTree {
  const tree = new BlockHashTree({ sizeBytes: bytes.length, pageSize });
  const leaves = Buffer.alloc(tree.pageCount * 32);
  for (let page = 0; page < tree.pageCount; page++) {
    const at = page * pageSize;
    tree.hashPage(bytes.subarray(at, Math.min(at + pageSize, bytes.length))).copy(leaves, page * 32);
  }
  tree.loadLeaves(leaves);
  return tree;
}
