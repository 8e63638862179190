import { blockDigest, type ChecksumRequest, pageDigests, XXH3_LEAF_BYTES } from "../common/blockhash/index.js";
import type { BlobStore, PageRange } from "../common/storage/index.js";
import { type BlockChecksum, ChecksumAlgorithm } from "../proto/index.js";
import type { ReplicaChecksumMap } from "./pipeline/checksum-map.js";

/** Checksums per message, as the proto contract promises. */
export const CHECKSUMS_PER_MESSAGE = 1024;
/** Bytes read from the replica per call; several blocks share one read. */
const READ_CHUNK_BYTES = 4 * 1024 * 1024;

export interface ChecksumMessage {
  checksums: BlockChecksum[];
  totalBlocks: number;
}

/** Whether the replica checksum map can answer: XXH3-128 in whole 4 KiB pages (SHA-256 proofs read storage). */
export function mapCovers(request: ChecksumRequest): boolean {
  const { blockSize, algorithm, pageSize } = request;
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  return (
    algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 &&
    pow2(blockSize) &&
    blockSize >= XXH3_LEAF_BYTES &&
    (pageSize === 0 || (pow2(pageSize) && pageSize >= XXH3_LEAF_BYTES))
  );
}

/**
 * The digest of each fixed-size block of a replica disk (and of the pages inside it, when asked).
 * Blocks no written page range touches are left out (a missing block is all-zero, like an empty
 * digest); a written block that holds only zeros is sent with an empty digest too, so the agent
 * treats both alike. With the disk's checksum map and a request it covers, blocks come from the
 * map; only blocks with unknown pages are read from storage, and those reads fill the map.
 */
export async function* blockChecksums(
  store: BlobStore,
  blobName: string,
  diskBytes: number,
  request: ChecksumRequest,
  map?: ReplicaChecksumMap,
): AsyncGenerator<ChecksumMessage> {
  if (map && map.sizeBytes === diskBytes && mapCovers(request)) {
    yield* mapChecksums(map, store, blobName, diskBytes, request);
    return;
  }
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

/** Checksums from the map, reading from storage only the runs of blocks it does not know. */
async function* mapChecksums(
  map: ReplicaChecksumMap,
  store: BlobStore,
  blobName: string,
  diskBytes: number,
  request: ChecksumRequest,
): AsyncGenerator<ChecksumMessage> {
  const { blockSize, algorithm, pageSize } = request;
  const totalBlocks = Math.ceil(diskBytes / blockSize);
  const perRead = Math.max(1, Math.floor(READ_CHUNK_BYTES / blockSize));
  let written: { ranges: PageRange[]; mark: number } | undefined;
  let batch: BlockChecksum[] = [];
  let sent = false;
  const push = (c: BlockChecksum) => {
    batch.push(c);
    if (batch.length < CHECKSUMS_PER_MESSAGE) return undefined;
    const msg = { checksums: batch, totalBlocks };
    batch = [];
    sent = true;
    return msg;
  };
  for (let b = 0; b < totalBlocks; ) {
    const answer = map.answer(b, blockSize, pageSize);
    if (answer.kind !== "unknown") {
      const msg = answer.kind === "checksum" ? push(answer.checksum) : undefined;
      if (msg) yield msg;
      b++;
      continue;
    }
    // A run of unknown blocks, read in chunks: unwritten ranges are zeros without a read.
    let last = b;
    while (last + 1 < totalBlocks && last - b + 1 < perRead && map.answer(last + 1, blockSize, pageSize).kind === "unknown") last++;
    if (!written) {
      const mark = map.mark();
      written = { ranges: await store.getPageRanges(blobName), mark };
    }
    const start = b * blockSize;
    const end = Math.min(diskBytes, (last + 1) * blockSize);
    const touched = written.ranges.filter((r) => r.offset < end && r.offset + r.length > start);
    let data: Buffer | undefined;
    if (touched.length === 0) {
      map.observeZero(start, end - start, written.mark);
    } else {
      const mark = map.mark();
      data = await store.readPages(blobName, start, end - start);
      map.observe(start, data, mark);
    }
    for (let k = b; k <= last; k++) {
      const now = map.answer(k, blockSize, pageSize);
      let checksum: BlockChecksum | undefined;
      if (now.kind === "checksum") checksum = now.checksum;
      else if (now.kind === "unknown" && data) {
        // The applier changed the block while it was read: answer from the bytes read, as without a map.
        const block = data.subarray((k - b) * blockSize, Math.min(data.length, (k - b + 1) * blockSize));
        const digest = blockDigest(algorithm, block);
        checksum = { blockIndex: k, digest, pageDigests: pageSize > 0 && digest.length > 0 ? pageDigests(algorithm, block, pageSize) : Buffer.alloc(0) };
      }
      const msg = checksum ? push(checksum) : undefined;
      if (msg) yield msg;
    }
    b = last + 1;
  }
  if (batch.length > 0 || !sent) yield { checksums: batch, totalBlocks };
}
