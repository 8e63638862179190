import { type ChecksumRequest, digestLength, digestOf } from "../common/blockhash/index.js";
import { isZero } from "../common/bytes/index.js";
import type { BlockChecksum } from "../proto/index.js";

/** A byte range of a block to send: its bytes, or a ZERO record when the source holds zeros there. */
export interface BlockRun {
  /** Offsets inside the block, end exclusive. */
  start: number;
  end: number;
  zero: boolean;
}

/**
 * What of one source block must travel so the replica's block equals it, from the replica's
 * checksum. Two levels: the block digest first (equal: nothing), then the page digests inside a
 * block that differs, so a few changed pages cost a few pages and not the whole block. Adjacent
 * pages of the same kind merge into one run. Without page digests (the replica block is absent or
 * zero, or the server sent none) the comparison falls back to whole blocks, except that zero pages
 * over a zero replica are skipped.
 */
export function blockDifferences(data: Buffer, replica: BlockChecksum | undefined, request: ChecksumRequest): BlockRun[] {
  const replicaDigest = replica?.digest ?? Buffer.alloc(0);
  const replicaZero = replicaDigest.length === 0;
  if (isZero(data)) {
    // A replica may name an all-zero block by its digest rather than by an empty one.
    const same = replicaZero || digestOf(request.algorithm, data).equals(replicaDigest);
    return same ? [] : [{ start: 0, end: data.length, zero: true }];
  }
  if (!replicaZero && digestOf(request.algorithm, data).equals(replicaDigest)) return [];

  const { pageSize, algorithm } = request;
  const size = digestLength(algorithm);
  const pageCount = pageSize > 0 ? Math.ceil(data.length / pageSize) : 0;
  const pages = replica?.pageDigests ?? Buffer.alloc(0);
  const comparable = pageCount > 0 && (replicaZero || pages.length === pageCount * size);
  if (!comparable) return [{ start: 0, end: data.length, zero: false }];

  const runs: BlockRun[] = [];
  for (let p = 0; p < pageCount; p++) {
    const start = p * pageSize;
    const end = Math.min(data.length, start + pageSize);
    const page = data.subarray(start, end);
    const zero = isZero(page);
    const same = replicaZero ? zero : digestOf(algorithm, page).equals(pages.subarray(p * size, (p + 1) * size));
    if (same) continue;
    const prev = runs.at(-1);
    if (prev && prev.end === start && prev.zero === zero) prev.end = end;
    else runs.push({ start, end, zero });
  }
  return runs;
}
