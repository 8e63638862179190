import { setImmediate as yieldToIo } from "node:timers/promises";
import { BlockHashTree, serializeSummary } from "../common/blockhash/index.js";
import type { DiskProof } from "../proto/index.js";
import type { DiskImage } from "./disk-image.js";

/** Read and hashed per event-loop turn while the tree is built, so writes are not held up long. */
const BUILD_CHUNK = 1024 * 1024;

/**
 * The hash tree of one image-file disk (docs/fingerprint.md), kept current as writes land, so the
 * fingerprint at a tag costs one pass up the tree instead of a read of the disk.
 *
 * At start the tree is built in the background, a chunk per turn. Reads of the image are
 * synchronous, so a chunk is read and hashed in one turn: a write that lands on a page already
 * hashed updates the tree, one on a page not yet reached is seen by the later read.
 */
export class DiskFingerprint {
  readonly tree: BlockHashTree;
  private builtBytes = 0;
  private stopped = false;
  /** Bumped by rebuild(): an older build loop sees it and stops. */
  private generation = 0;
  private built: Promise<void>;

  constructor(
    readonly index: number,
    private readonly disk: DiskImage,
  ) {
    this.tree = new BlockHashTree({ sizeBytes: disk.size });
    this.built = this.build();
    this.built.catch(() => undefined); // reported to whoever waits for ready()
  }

  /**
   * Hashes the whole image again: someone else wrote it (the master target during failback,
   * while this agent's writes were stopped).
   */
  rebuild(): void {
    this.generation++;
    this.builtBytes = 0;
    this.built = this.build();
    this.built.catch(() => undefined);
  }

  /** Stops a build still running (the disk is about to close). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves once the whole disk is in the tree. */
  ready(): Promise<void> {
    return this.built;
  }

  get isReady(): boolean {
    return this.builtBytes >= this.disk.size;
  }

  /** Call right after the image write, in the same turn. */
  written(offset: number, data: Buffer): void {
    const length = this.hashedPart(offset, data.length);
    if (length > 0) this.tree.update(offset, length === data.length ? data : data.subarray(0, length), this.readPage);
  }

  zeroed(offset: number, length: number): void {
    const hashed = this.hashedPart(offset, length);
    if (hashed > 0) this.tree.zero(offset, hashed, this.readPage);
  }

  /** Brings the tree's upper levels up to date, so a later proof() has little left to do. */
  refresh(): void {
    this.tree.root();
  }

  /** The disk's fingerprint (the proof a recovery is checked against) now; call in the same turn as the tag that names the sequence. */
  proof(): DiskProof {
    if (!this.isReady) throw new Error(`the fingerprint of disk ${this.index} is still being computed`);
    return {
      index: this.index,
      sizeBytes: this.tree.sizeBytes,
      pageSize: this.tree.pageSize,
      fingerprint: this.tree.fingerprint(),
      summary: serializeSummary(this.tree.summary()),
    };
  }

  /** Bytes of [offset, offset+length) that lie in the part of the disk already hashed. */
  private hashedPart(offset: number, length: number): number {
    if (offset >= this.builtBytes) return 0;
    return Math.min(length, this.builtBytes - offset);
  }

  private readonly readPage = (page: number): Buffer => {
    const start = page * this.tree.pageSize;
    return this.disk.read(start, Math.min(this.tree.pageSize, this.disk.size - start));
  };

  private async build(): Promise<void> {
    const size = this.disk.size;
    const pageSize = this.tree.pageSize;
    const generation = this.generation;
    while (this.builtBytes < size) {
      if (generation !== this.generation) return this.built;
      if (this.stopped) throw new Error(`disk ${this.index} closed before its fingerprint was computed`);
      const length = Math.min(BUILD_CHUNK, size - this.builtBytes);
      const data = this.disk.read(this.builtBytes, length);
      for (let at = 0; at < length; at += pageSize) {
        this.tree.setPage((this.builtBytes + at) / pageSize, data.subarray(at, Math.min(at + pageSize, length)));
      }
      this.builtBytes += length;
      if (this.builtBytes < size) await yieldToIo();
    }
  }
}
