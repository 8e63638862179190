// One class on purpose (about 430 lines): updates, lazy recomputation, comparison and
// summaries all walk the same level arrays and stale marks; the hash functions live in sha256.ts
// and xxh3.ts, the range arithmetic in byte-range.ts.
import { appendRange, type ByteRange } from "./byte-range.js";
import { HASH_BYTES, sha256 } from "./sha256.js";
import { isZero } from "../bytes/index.js";
import { ChecksumAlgorithm } from "../../proto/index.js";
import { XXH3_128_BYTES, xxh3128 } from "./xxh3.js";

export const DEFAULT_PAGE_SIZE = 4096;

/** Fingerprints name their scheme so a future change of definition can never compare equal by accident. */
const FINGERPRINT_DOMAIN = Buffer.from("srlab-blockhash-v1", "ascii");

export interface BlockHashTreeOptions {
  /** Disk size in bytes; the last page may be partial and hashes as if zero-padded. */
  sizeBytes: number;
  /** Bytes per leaf; a power of two, at least 512. Default 4096. */
  pageSize?: number;
  /**
   * SHA-256 (default): the fingerprint tree of the proofs. XXH3-128: the resync tree (the replica
   * checksum map), whose leaves are the page digests resync compares and whose nodes at a block's
   * level are the block digests; there a short last page is hashed as it is, not zero-padded.
   */
  algorithm?: ChecksumAlgorithm;
}

/**
 * Reads one page's current bytes (after the write that touched it). Needed only when a write
 * covers part of a page: the tree holds hashes, not data.
 */
export type PageReader = (pageIndex: number) => Buffer;

/** One level of a tree, enough to name which ranges of a disk differ from it without the whole tree. */
export interface TreeSummary {
  pageSize: number;
  sizeBytes: number;
  /** 0 = leaves; a node at level L covers 2^L pages. */
  level: number;
  /** The level's node hashes, 32 bytes each. */
  nodes: Buffer;
}

/**
 * A SHA-256 hash tree over the fixed-size pages of a disk, updated incrementally as writes land.
 * Its root, bound to the disk and page size, is the disk fingerprint (docs/fingerprint.md):
 *
 *   leaf(i)    = SHA-256(page i, the last page zero-padded to the page size)
 *   node       = SHA-256(left ‖ right); a node without a right sibling is carried up unchanged
 *   root       = the single node of the top level (SHA-256 of nothing for an empty disk)
 *   fingerprint = SHA-256("srlab-blockhash-v1" ‖ u64be sizeBytes ‖ u32be pageSize ‖ root)
 *
 * With XXH3-128 the same shape holds with XXH3-128 (16 bytes) for SHA-256 and no padding of a
 * short last page: that tree is the resync's (see block-digest.ts), not a fingerprint.
 *
 * Interior nodes are recomputed lazily: writes only mark leaves, and `root()` rehashes each
 * stale ancestor once, so a burst of writes costs one pass up the tree.
 */
export class BlockHashTree {
  readonly pageSize: number;
  readonly sizeBytes: number;
  readonly pageCount: number;
  readonly algorithm: ChecksumAlgorithm;
  /** Bytes of one hash: 32 (SHA-256) or 16 (XXH3-128). */
  readonly hashBytes: number;
  /** levels[0] = leaves, levels[top] = [root]; each a packed array of 32-byte hashes. */
  private readonly levels: Buffer[];
  private readonly counts: number[];
  private readonly zeroLeaf: Buffer;
  private readonly xxh3: boolean;
  private readonly hash: (data: Buffer) => Buffer;
  /** Leaves changed since the interior was last brought up to date. */
  private stale: number[] = [];
  private allStale = false;

  /** A tree for a disk of zeros (a new sparse image), built without hashing every page. */
  constructor(options: BlockHashTreeOptions) {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
      throw new RangeError(`page size ${pageSize} must be a power of two of at least 512 bytes`);
    }
    if (!Number.isSafeInteger(options.sizeBytes) || options.sizeBytes < 0) {
      throw new RangeError(`disk size ${options.sizeBytes} must be a non-negative integer`);
    }
    const algorithm = options.algorithm ?? ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256;
    if (algorithm !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256 && algorithm !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128) {
      throw new RangeError(`a block-hash tree is SHA-256 or XXH3-128, not algorithm ${algorithm}`);
    }
    this.algorithm = algorithm;
    this.xxh3 = algorithm === ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128;
    this.hashBytes = this.xxh3 ? XXH3_128_BYTES : HASH_BYTES;
    this.hash = this.xxh3 ? xxh3128 : sha256;
    this.pageSize = pageSize;
    this.sizeBytes = options.sizeBytes;
    this.pageCount = Math.ceil(options.sizeBytes / pageSize);
    this.counts = levelCounts(this.pageCount);
    this.levels = this.counts.map((n) => Buffer.allocUnsafe(n * this.hashBytes));
    this.zeroLeaf = this.hash(Buffer.alloc(pageSize));
    this.fillZero();
  }

  /** Number of levels including leaves and root (0 for an empty disk). */
  get height(): number {
    return this.levels.length;
  }

  /** Nodes at `level` (0 = leaves). */
  levelSize(level: number): number {
    return this.counts[level] ?? 0;
  }

  /** A copy of one level's hashes, `hashBytes` per node. */
  levelNodes(level: number): Buffer {
    this.refresh();
    const nodes = this.levels[level];
    if (!nodes) throw new RangeError(`level ${level} does not exist (height ${this.height})`);
    return Buffer.from(nodes);
  }

  /** Hash of one node (a view; copy it before the tree changes if you keep it). */
  node(level: number, index: number): Buffer {
    if (level > 0) this.refresh();
    const nodes = this.levels[level];
    if (!nodes || index < 0 || index >= this.counts[level]) {
      throw new RangeError(`node ${index} of level ${level} does not exist`);
    }
    return nodes.subarray(index * this.hashBytes, (index + 1) * this.hashBytes);
  }

  leaf(pageIndex: number): Buffer {
    return this.node(0, pageIndex);
  }

  /** Sets one leaf's hash directly (for callers that hash pages elsewhere, e.g. in a worker). */
  setLeaf(pageIndex: number, hash: Buffer): void {
    if (pageIndex < 0 || pageIndex >= this.pageCount || !Number.isInteger(pageIndex)) {
      throw new RangeError(`page ${pageIndex} is outside the disk (${this.pageCount} pages)`);
    }
    if (hash.length !== this.hashBytes) throw new RangeError(`a leaf hash is ${this.hashBytes} bytes, not ${hash.length}`);
    hash.copy(this.levels[0], pageIndex * this.hashBytes);
    this.markStale(pageIndex);
  }

  /** Hashes one page's bytes into its leaf; a short last page is zero-padded. */
  setPage(pageIndex: number, bytes: Buffer): void {
    this.setLeaf(pageIndex, this.hashPage(bytes));
  }

  /**
   * Records a write of `data` at `offset`. Pages the write covers completely are hashed from
   * `data`; a page it covers only in part is hashed from `readPage` (its bytes after the write).
   */
  update(offset: number, data: Buffer, readPage?: PageReader): void {
    this.forEachPage(offset, data.length, "write", (page, from, to, full) => {
      if (full) this.setPage(page, data.subarray(from - offset, to - offset));
      else this.setPage(page, this.readPartial(page, readPage, "write"));
    });
  }

  /** Records that a range now reads as zeros (trim / write-zeroes). */
  zero(offset: number, length: number, readPage?: PageReader): void {
    this.forEachPage(offset, length, "zero", (page, from, to, full) => {
      if (full) this.setPage(page, zeroes(to - from));
      else this.setPage(page, this.readPartial(page, readPage, "zero"));
    });
  }

  /** The tree's root hash (`hashBytes`). */
  root(): Buffer {
    if (this.pageCount === 0) return this.hash(Buffer.alloc(0));
    this.refresh();
    return Buffer.from(this.levels[this.levels.length - 1]);
  }

  /** The disk fingerprint: the root bound to the disk size and page size, as 64 hex digits. */
  fingerprint(): string {
    if (this.xxh3) throw new RangeError("a fingerprint is the root of a SHA-256 tree, not of an XXH3-128 one");
    return fingerprintOf(this.sizeBytes, this.pageSize, this.root());
  }

  /**
   * The lowest level with at most `maxNodes` nodes: small enough to store beside a recovery
   * point, fine enough to name the ranges of a mismatch (a 1 GiB disk → 2^18 leaves; with 4096
   * nodes each covers 256 KiB).
   */
  summary(maxNodes = 4096): TreeSummary {
    this.refresh();
    let level = 0;
    while (level < this.levels.length - 1 && this.counts[level] > maxNodes) level++;
    return {
      pageSize: this.pageSize,
      sizeBytes: this.sizeBytes,
      level,
      nodes: this.pageCount === 0 ? Buffer.alloc(0) : Buffer.from(this.levels[level]),
    };
  }

  /**
   * Byte ranges where this disk differs from the one `other` describes, merged when adjacent.
   * Trees of the same shape are compared top-down, so equal subtrees cost one comparison.
   */
  diff(other: BlockHashTree): ByteRange[] {
    if (other.pageSize !== this.pageSize || other.algorithm !== this.algorithm) {
      throw new RangeError(`cannot compare trees of ${this.pageSize}-byte and ${other.pageSize}-byte pages or of different hashes`);
    }
    this.refresh();
    other.refresh();
    const out: ByteRange[] = [];
    if (other.pageCount === this.pageCount && this.sizeBytes === other.sizeBytes) {
      if (this.pageCount > 0) this.descend(other, this.levels.length - 1, 0, out);
      return out;
    }
    // Different shapes: compare the common leaves one by one, then the tail differs by definition.
    const common = Math.min(this.pageCount, other.pageCount);
    for (let i = 0; i < common; i++) {
      if (!sameNode(this.levels[0], other.levels[0], i, this.hashBytes)) this.appendNode(out, 0, i);
    }
    const end = Math.max(this.sizeBytes, other.sizeBytes);
    const tailStart = Math.min(common * this.pageSize, Math.min(this.sizeBytes, other.sizeBytes));
    if (end > tailStart) {
      const last = out[out.length - 1];
      if (last && last.offset + last.length > tailStart) last.length = end - last.offset;
      else appendRange(out, tailStart, end - tailStart);
    }
    return out;
  }

  /** Byte ranges where this disk differs from a summary taken of the same-sized disk. */
  diffSummary(summary: TreeSummary): ByteRange[] {
    if (summary.pageSize !== this.pageSize || summary.sizeBytes !== this.sizeBytes || summary.nodes.length % this.hashBytes !== 0) {
      throw new RangeError(
        `summary of a ${summary.sizeBytes}-byte disk in ${summary.pageSize}-byte pages does not describe this ${this.sizeBytes}-byte disk in ${this.pageSize}-byte pages`,
      );
    }
    this.refresh();
    const out: ByteRange[] = [];
    const level = this.levels[summary.level];
    if (!level || summary.nodes.length !== level.length) {
      throw new RangeError(`summary level ${summary.level} has ${summary.nodes.length / this.hashBytes} nodes, the tree ${this.counts[summary.level] ?? 0}`);
    }
    for (let i = 0; i < this.counts[summary.level]; i++) {
      if (!sameNode(level, summary.nodes, i, this.hashBytes)) this.appendNode(out, summary.level, i);
    }
    return out;
  }

  /** An independent copy (e.g. the tree as of a tag, while writes continue on the original). */
  clone(): BlockHashTree {
    this.refresh();
    const copy = new BlockHashTree({ sizeBytes: this.sizeBytes, pageSize: this.pageSize, algorithm: this.algorithm });
    for (let l = 0; l < this.levels.length; l++) this.levels[l].copy(copy.levels[l]);
    return copy;
  }

  /** Leaf hashes as a packed buffer (serialization stores only these; the interior is rebuilt). */
  leaves(): Buffer {
    return Buffer.from(this.levels[0] ?? Buffer.alloc(0));
  }

  /** Replaces every leaf at once and rebuilds the interior. */
  loadLeaves(leaves: Buffer): void {
    if (leaves.length !== this.pageCount * this.hashBytes) {
      throw new RangeError(`expected ${this.pageCount} leaf hashes, got ${leaves.length / this.hashBytes}`);
    }
    if (this.pageCount === 0) return;
    leaves.copy(this.levels[0]);
    this.allStale = true;
    this.stale = [];
  }

  /** A page's leaf hash: zero pages short-circuit to a cached hash. */
  hashPage(bytes: Buffer): Buffer {
    if (bytes.length > this.pageSize) throw new RangeError(`a page is at most ${this.pageSize} bytes, got ${bytes.length}`);
    if (bytes.length === this.pageSize || this.xxh3) {
      return bytes.length === this.pageSize && isZero(bytes) ? this.zeroLeaf : this.hash(bytes);
    }
    if (isZero(bytes)) return this.zeroLeaf;
    const padded = Buffer.alloc(this.pageSize);
    bytes.copy(padded);
    return sha256(padded);
  }

  private forEachPage(
    offset: number,
    length: number,
    what: string,
    visit: (page: number, from: number, to: number, full: boolean) => void,
  ): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.sizeBytes) {
      throw new RangeError(`${what} ${offset}+${length} is outside the ${this.sizeBytes}-byte disk`);
    }
    if (length === 0) return;
    const end = offset + length;
    const first = Math.floor(offset / this.pageSize);
    const last = Math.floor((end - 1) / this.pageSize);
    for (let page = first; page <= last; page++) {
      const pageStart = page * this.pageSize;
      const pageEnd = Math.min(pageStart + this.pageSize, this.sizeBytes);
      const from = Math.max(pageStart, offset);
      const to = Math.min(pageEnd, end);
      visit(page, from, to, from === pageStart && to === pageEnd);
    }
  }

  private readPartial(page: number, readPage: PageReader | undefined, what: string): Buffer {
    if (!readPage) throw new RangeError(`${what} covers part of page ${page}: a page reader is needed to hash the rest`);
    const pageStart = page * this.pageSize;
    const expected = Math.min(this.pageSize, this.sizeBytes - pageStart);
    const bytes = readPage(page);
    if (bytes.length !== expected && bytes.length !== this.pageSize) {
      throw new RangeError(`page reader returned ${bytes.length} bytes for page ${page}, expected ${expected}`);
    }
    return bytes.length > expected ? bytes.subarray(0, expected) : bytes;
  }

  private markStale(pageIndex: number): void {
    if (this.allStale) return;
    this.stale.push(pageIndex);
    // Past a quarter of the leaves, rebuilding every level is cheaper than tracking paths.
    if (this.stale.length > this.pageCount / 4 + 64) {
      this.allStale = true;
      this.stale = [];
    }
  }

  /** Brings every interior node up to date with the leaves. */
  private refresh(): void {
    if (this.allStale) {
      for (let l = 1; l < this.levels.length; l++) {
        for (let i = 0; i < this.counts[l]; i++) this.recompute(l, i);
      }
      this.allStale = false;
      return;
    }
    if (this.stale.length === 0) return;
    let indices = Float64Array.from(this.stale).sort();
    this.stale = [];
    for (let l = 1; l < this.levels.length; l++) {
      const parents = new Float64Array(indices.length);
      let n = 0;
      let previous = -1;
      for (const child of indices) {
        const parent = Math.floor(child / 2);
        if (parent !== previous) {
          parents[n++] = parent;
          previous = parent;
          this.recompute(l, parent);
        }
      }
      indices = parents.subarray(0, n);
    }
  }

  private recompute(level: number, index: number): void {
    const children = this.levels[level - 1];
    const target = this.levels[level];
    const left = 2 * index;
    if (left + 1 < this.counts[level - 1]) {
      // Siblings are adjacent in the packed level: hash the 64 bytes in place.
      const size = this.hashBytes;
      this.hash(children.subarray(left * size, (left + 2) * size)).copy(target, index * size);
    } else {
      children.copy(target, index * this.hashBytes, left * this.hashBytes, (left + 1) * this.hashBytes);
    }
  }

  /** Fills the tree of an all-zero disk: full subtrees of equal height share one hash. */
  private fillZero(): void {
    if (this.pageCount === 0) return;
    let full = this.zeroLeaf;
    for (let l = 0; l < this.levels.length; l++) {
      const nodes = this.levels[l];
      nodes.fill(full);
      // Only the last node of a level can cover fewer than 2^l pages.
      if (l > 0 && this.pageCount % 2 ** l !== 0) this.recompute(l, this.counts[l] - 1);
      full = this.hash(Buffer.concat([full, full]));
    }
    // An XXH3 tree hashes a short last page as it is, so its zero leaf differs from a full page's.
    const tail = this.sizeBytes % this.pageSize;
    if (this.xxh3 && tail !== 0) this.setLeaf(this.pageCount - 1, this.hash(Buffer.alloc(tail)));
  }

  private descend(other: BlockHashTree, level: number, index: number, out: ByteRange[]): void {
    if (sameNode(this.levels[level], other.levels[level], index, this.hashBytes)) return;
    if (level === 0) {
      this.appendNode(out, 0, index);
      return;
    }
    const left = 2 * index;
    this.descend(other, level - 1, left, out);
    if (left + 1 < this.counts[level - 1]) this.descend(other, level - 1, left + 1, out);
  }

  /** Appends the bytes a node covers, clipped to the disk. */
  private appendNode(out: ByteRange[], level: number, index: number): void {
    const span = this.pageSize * 2 ** level;
    const start = index * span;
    const end = Math.min(start + span, this.sizeBytes);
    appendRange(out, start, end - start);
  }
}

/** The fingerprint of a disk from its tree root (see BlockHashTree). */
export function fingerprintOf(sizeBytes: number, pageSize: number, root: Buffer): string {
  const header = Buffer.alloc(12);
  header.writeBigUInt64BE(BigInt(sizeBytes), 0);
  header.writeUInt32BE(pageSize, 8);
  return sha256(Buffer.concat([FINGERPRINT_DOMAIN, header, root])).toString("hex");
}

function levelCounts(pageCount: number): number[] {
  if (pageCount === 0) return [];
  const counts = [pageCount];
  while (counts[counts.length - 1] > 1) counts.push(Math.ceil(counts[counts.length - 1] / 2));
  return counts;
}

function sameNode(a: Buffer, b: Buffer, index: number, size: number): boolean {
  const at = index * size;
  return a.compare(b, at, at + size, at, at + size) === 0;
}

const ZEROES = Buffer.alloc(64 * 1024);

/** A view of `length` zero bytes (a page is at most 64 KiB here; larger ones get their own). */
function zeroes(length: number): Buffer {
  return length <= ZEROES.length ? ZEROES.subarray(0, length) : Buffer.alloc(length);
}

