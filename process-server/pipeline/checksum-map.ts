import { BlockHashTree, type ByteRange, deserializeTree, serializeTree, XXH3_LEAF_BYTES, xxh3128 } from "../../common/blockhash/index.js";
import { type BlockChecksum, ChecksumAlgorithm } from "../../proto/index.js";

const MAGIC = Buffer.from("SRCM", "ascii");
const VERSION = 1;
/** magic, version, 3 reserved, u64 covered sequence. */
const HEADER_BYTES = 16;
const TRAILER_BYTES = 16;

/** What a block of the map says: its checksum, all-zero, or unknown (read it from storage). */
export type MapAnswer = { kind: "checksum"; checksum: BlockChecksum } | { kind: "zero" } | { kind: "unknown" };

/**
 * The replica checksum map of one disk: the XXH3-128 BlockHashTree over its 4 KiB pages, kept by
 * the applier from the bytes it writes, so a resync gets the replica's block and page digests
 * without reading the replica back. Block digests are the tree's nodes at the block's level
 * (block-digest.ts defines XXH3 digests that way on both sides).
 *
 * A page is known or unknown. The applier makes pages it writes completely known; a page it
 * writes in part becomes unknown (the tree holds hashes, not the rest of the page), and so does
 * everything after a crash the map cannot vouch for. Unknown pages are filled from storage reads,
 * which also check the known ones: a disagreement is reported, never papered over.
 *
 * Each change carries a generation, so a storage read that raced with the applier never fills a
 * page with bytes older than the applier's last write to it.
 */
export class ReplicaChecksumMap {
  readonly tree: BlockHashTree;
  readonly sizeBytes: number;
  /** Per page: > 0 known since that generation; ≤ 0 unknown, changed at generation -stamp. */
  private readonly stamps: Int32Array;
  private generation = 1;
  private readonly zeroLeaf: Buffer;
  private readonly tailZeroLeaf: Buffer;
  /** Highest sequence whose writes the map holds (the replica sink's processed position). */
  coveredSequence = 0;
  /** Changed since it was last persisted. */
  dirty = false;
  /** Told when storage disagrees with a known page; the map has then forgotten everything. */
  onDisagreement?: (ranges: ByteRange[]) => void;

  constructor(sizeBytes: number, tree?: BlockHashTree) {
    this.sizeBytes = sizeBytes;
    this.tree = tree ?? new BlockHashTree({ sizeBytes, pageSize: XXH3_LEAF_BYTES, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128 });
    if (this.tree.sizeBytes !== sizeBytes || this.tree.pageSize !== XXH3_LEAF_BYTES || this.tree.algorithm !== ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128) {
      throw new RangeError(`a checksum map of a ${sizeBytes}-byte disk is an XXH3-128 tree of 4 KiB pages of that size`);
    }
    this.stamps = new Int32Array(this.tree.pageCount);
    this.zeroLeaf = xxh3128(Buffer.alloc(XXH3_LEAF_BYTES));
    const tail = sizeBytes % XXH3_LEAF_BYTES;
    this.tailZeroLeaf = tail ? xxh3128(Buffer.alloc(tail)) : this.zeroLeaf;
  }

  get pageCount(): number {
    return this.tree.pageCount;
  }

  /** Pages known now (for logs and tests). */
  knownPages(): number {
    let n = 0;
    for (const s of this.stamps) if (s > 0) n++;
    return n;
  }

  /** Taken before a storage read: fills and checks from that read compare against it. */
  mark(): number {
    return this.generation++;
  }

  /**
   * The applier wrote `data` at `offset` (512-byte aligned). With `changed` (sorted, disjoint),
   * only pages those ranges touch are hashed again: the rest of `data` is what the same apply read
   * from the replica and observe() checked or filled, so a known page keeps its digest. A block
   * write of a few small records then hashes a few pages, not the whole block.
   */
  write(offset: number, data: Buffer, changed?: readonly ByteRange[]): void {
    const gen = ++this.generation;
    let next = 0;
    this.eachPage(offset, data.length, (page, from, to, full) => {
      if (!full) {
        this.stamps[page] = -gen;
        return;
      }
      if (changed) {
        while (next < changed.length && changed[next]!.offset + changed[next]!.length <= from) next++;
        const touched = next < changed.length && changed[next]!.offset < to;
        if (!touched && this.stamps[page]! > 0) {
          this.stamps[page] = gen;
          return;
        }
      }
      this.setKnown(page, data.subarray(from - offset, to - offset), gen);
    });
  }

  /** The applier cleared (zeroed) a range. */
  clear(offset: number, length: number): void {
    const gen = ++this.generation;
    this.eachPage(offset, length, (page, _from, _to, full) => {
      if (full) {
        this.tree.setLeaf(page, page === this.pageCount - 1 ? this.tailZeroLeaf : this.zeroLeaf);
        this.stamps[page] = gen;
        this.dirty = true;
      } else this.stamps[page] = -gen;
    });
  }

  /** A range may have changed in ways the map did not see (a failed apply attempt): unknown until read. */
  forget(offset: number, length: number): void {
    const gen = ++this.generation;
    this.eachPage(offset, length, (page) => {
      this.stamps[page] = -gen;
    });
    this.dirty = true;
  }

  /** Nothing is known any more (a stale file, storage that lost data, a hole in the log). */
  invalidate(): void {
    this.stamps.fill(-++this.generation);
    this.dirty = true;
  }

  /**
   * Bytes read from storage at `offset` by a read that began at `mark`: fills unknown pages the
   * applier has not changed since, and checks known ones. A known page that disagrees makes the
   * whole map unknown (one wrong digest says the others cannot be vouched for either) and is
   * reported to `onDisagreement`; the ranges are returned too.
   */
  observe(offset: number, data: Buffer, mark: number): ByteRange[] {
    const mismatches: ByteRange[] = [];
    this.eachPage(offset, data.length, (page, from, to, full) => {
      if (!full) return;
      const stamp = this.stamps[page]!;
      if (stamp > mark || -stamp > mark) return; // changed since the read began
      const hash = this.tree.hashPage(data.subarray(from - offset, to - offset));
      if (stamp <= 0) {
        this.tree.setLeaf(page, hash);
        this.stamps[page] = mark;
        this.dirty = true;
      } else if (!hash.equals(this.tree.leaf(page))) {
        const last = mismatches.at(-1);
        if (last && last.offset + last.length === from) last.length += to - from;
        else mismatches.push({ offset: from, length: to - from });
      }
    });
    if (mismatches.length > 0) {
      this.invalidate();
      this.onDisagreement?.(mismatches);
    }
    return mismatches;
  }

  /** Pages of a range unwritten in storage (a page blob's holes read as zeros): known zero, if unchanged since `mark`. */
  observeZero(offset: number, length: number, mark: number): void {
    this.eachPage(offset, length, (page, _from, _to, full) => {
      const stamp = this.stamps[page]!;
      if (!full || stamp > 0 || -stamp > mark) return;
      this.tree.setLeaf(page, page === this.pageCount - 1 ? this.tailZeroLeaf : this.zeroLeaf);
      this.stamps[page] = mark;
      this.dirty = true;
    });
  }

  /**
   * The checksum of block `index` of `blockSize` bytes with page digests of `pageSize` (0: none),
   * both multiples of 4 KiB and powers of two; unknown when any of its pages is.
   */
  answer(index: number, blockSize: number, pageSize: number): MapAnswer {
    const perBlock = blockSize / XXH3_LEAF_BYTES;
    const first = index * perBlock;
    const end = Math.min(this.pageCount, first + perBlock);
    let zero = true;
    for (let p = first; p < end; p++) {
      if (this.stamps[p]! <= 0) return { kind: "unknown" };
      if (zero && !this.tree.leaf(p).equals(p === this.pageCount - 1 ? this.tailZeroLeaf : this.zeroLeaf)) zero = false;
    }
    if (zero) return { kind: "zero" };
    const digest = Buffer.from(this.nodeCovering(Math.log2(perBlock), index));
    let pageDigests = Buffer.alloc(0);
    if (pageSize > 0) {
      const level = Math.log2(pageSize / XXH3_LEAF_BYTES);
      const perPage = pageSize / XXH3_LEAF_BYTES;
      const pages: Buffer[] = [];
      for (let p = first; p < end; p += perPage) pages.push(this.nodeCovering(level, p / perPage));
      pageDigests = Buffer.concat(pages);
    }
    return { kind: "checksum", checksum: { blockIndex: index, digest, pageDigests } };
  }

  /** The binary file form (docs/storage-format.md): header, known-page bitmap, tree, XXH3 trailer. */
  serialize(): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt8(VERSION, 4);
    header.writeBigUInt64BE(BigInt(this.coveredSequence), 8);
    const known = Buffer.alloc(Math.ceil(this.pageCount / 8));
    for (let p = 0; p < this.pageCount; p++) if (this.stamps[p]! > 0) known[p >> 3]! |= 1 << (p & 7);
    const body = Buffer.concat([header, known, serializeTree(this.tree)]);
    return Buffer.concat([body, xxh3128(body)]);
  }

  /** A map from its file form; throws on anything torn, foreign or of another disk size. */
  static deserialize(buf: Buffer, sizeBytes: number): ReplicaChecksumMap {
    if (buf.length < HEADER_BYTES + TRAILER_BYTES || !buf.subarray(0, 4).equals(MAGIC)) throw new Error("not a replica checksum map");
    const body = buf.subarray(0, buf.length - TRAILER_BYTES);
    if (!xxh3128(body).equals(buf.subarray(buf.length - TRAILER_BYTES))) throw new Error("the checksum map file is corrupt (its digest does not match)");
    if (buf.readUInt8(4) !== VERSION) throw new Error(`checksum map version ${buf.readUInt8(4)} is not supported`);
    const pageCount = Math.ceil(sizeBytes / XXH3_LEAF_BYTES);
    const knownBytes = Math.ceil(pageCount / 8);
    const map = new ReplicaChecksumMap(sizeBytes, deserializeTree(body.subarray(HEADER_BYTES + knownBytes)));
    map.coveredSequence = Number(buf.readBigUInt64BE(8));
    const known = body.subarray(HEADER_BYTES, HEADER_BYTES + knownBytes);
    for (let p = 0; p < pageCount; p++) map.stamps[p] = known[p >> 3]! & (1 << (p & 7)) ? 1 : 0;
    return map;
  }

  private setKnown(page: number, bytes: Buffer, gen: number): void {
    this.tree.setPage(page, bytes);
    this.stamps[page] = gen;
    this.dirty = true;
  }

  /** The tree node over `index` at `level`, or the root when the disk is smaller than that level. */
  private nodeCovering(level: number, index: number): Buffer {
    const top = this.tree.height - 1;
    return level >= top ? this.tree.node(top, 0) : this.tree.node(level, index);
  }

  private eachPage(offset: number, length: number, visit: (page: number, from: number, to: number, full: boolean) => void): void {
    const end = Math.min(this.sizeBytes, offset + length);
    for (let page = Math.floor(offset / XXH3_LEAF_BYTES); page * XXH3_LEAF_BYTES < end; page++) {
      const pageStart = page * XXH3_LEAF_BYTES;
      const pageEnd = Math.min(pageStart + XXH3_LEAF_BYTES, this.sizeBytes);
      const from = Math.max(pageStart, offset);
      const to = Math.min(pageEnd, end);
      visit(page, from, to, from === pageStart && to === pageEnd);
    }
  }
}
