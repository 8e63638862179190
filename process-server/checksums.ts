import { blockDigest, type ChecksumRequest, pageDigests } from "../common/blockhash/index.js";
import type { BlobStore, PageRange } from "../common/storage/index.js";
import type { BlockChecksum } from "../proto/index.js";

/** Checksums per message, as the proto contract promises. */
export const CHECKSUMS_PER_MESSAGE = 1024;
/** Bytes read from the replica per call; several blocks share one read. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;

export interface ChecksumMessage {
  checksums: BlockChecksum[];
  totalBlocks: number;
}

/**
 * The digest of each fixed-size block of a replica disk (and of the pages inside it, when asked).
 * Blocks no written page range touches are left out (a missing block is all-zero, like an empty
 * digest); a written block that holds only zeros is sent with an empty digest too, so the agent
 * treats both alike.
 */
export async function* blockChecksums(
  store: BlobStore,
  blobName: string,
  diskBytes: number,
  request: ChecksumRequest,
): AsyncGenerator<ChecksumMessage> {
  const { blockSize, algorithm, pageSize } = request;
  const totalBlocks = Math.ceil(diskBytes / blockSize);
  const blocks = writtenBlocks(await store.getPageRanges(blobName), blockSize, totalBlocks);
  let batch: BlockChecksum[] = [];
  let sent = false;
  // Read runs of consecutive written blocks in chunks, then hash block by block.
  for (const run of blocks) {
    const perRead = Math.max(1, Math.floor(READ_CHUNK_BYTES / blockSize));
    for (let b = run.first; b <= run.last; b += perRead) {
      const lastBlock = Math.min(run.last, b + perRead - 1);
      const start = b * blockSize;
      const end = Math.min(diskBytes, (lastBlock + 1) * blockSize);
      const data = await store.readPages(blobName, start, end - start);
      for (let k = b; k <= lastBlock; k++) {
        const block = data.subarray((k - b) * blockSize, Math.min(data.length, (k - b + 1) * blockSize));
        const digest = blockDigest(algorithm, block);
        const pages = pageSize > 0 && digest.length > 0 ? pageDigests(algorithm, block, pageSize) : Buffer.alloc(0);
        batch.push({ blockIndex: k, digest, pageDigests: pages });
        if (batch.length === CHECKSUMS_PER_MESSAGE) {
          yield { checksums: batch, totalBlocks };
          batch = [];
          sent = true;
        }
      }
    }
  }
  // Always at least one message, so the caller learns total_blocks even for an empty disk.
  if (batch.length > 0 || !sent) yield { checksums: batch, totalBlocks };
}

/** Runs of block indexes touched by written ranges. */
function writtenBlocks(ranges: PageRange[], blockSize: number, totalBlocks: number): { first: number; last: number }[] {
  const runs: { first: number; last: number }[] = [];
  for (const r of ranges) {
    if (r.length <= 0) continue;
    const first = Math.floor(r.offset / blockSize);
    const last = Math.min(totalBlocks - 1, Math.floor((r.offset + r.length - 1) / blockSize));
    if (first > last) continue;
    const prev = runs[runs.length - 1];
    if (prev && first <= prev.last + 1) prev.last = Math.max(prev.last, last);
    else runs.push({ first, last });
  }
  return runs;
}
