import { BlockHashTree, hashImagePages, serializeSummary } from "../common/blockhash/index.js";
import type { DiskProof } from "../proto/index.js";
import type { DiskImage } from "./disk-image.js";

/** Bytes one worker task reads and hashes while the tree is built. */
const BUILD_CHUNK = 4 * 1024 * 1024;
/** Chunks handed to the workers at once: enough to keep every worker busy. */
const CHUNKS_IN_FLIGHT = 3;

/** A chunk of the disk that a worker is reading and hashing. */
interface ChunkInFlight {
  start: number;
  end: number;
  /** Pages written since the chunk was handed out: the worker may have read them before or after. */
  written: Set<number>;
  leaves: Promise<Buffer>;
}

/**
 * The hash tree of one image-file disk (docs/fingerprint.md), kept current as writes land, so the
 * fingerprint at a tag costs one pass up the tree instead of a read of the disk.
 *
 * At start the tree is built in the background, in chunks read and hashed on worker threads (the
 * event loop serves the NBD export meanwhile). A write that lands on a page already hashed updates
 * the tree; one on a page not yet handed out is seen by the worker's later read; one on a page of
 * a chunk in flight is noted, and that page is hashed again once the chunk's leaves are in.
 */
export class DiskFingerprint {
  readonly tree: BlockHashTree;
  private builtBytes = 0;
  private inFlight: ChunkInFlight[] = [];
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
    this.inFlight = [];
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

  /** Bytes from the start of the disk that are in the tree so far. */
  get hashedBytes(): number {
    return this.builtBytes;
  }

  /** Call right after the image write, in the same turn. */
  written(offset: number, data: Buffer): void {
    this.noteInFlight(offset, data.length);
    const length = this.hashedPart(offset, data.length);
    if (length > 0) this.tree.update(offset, length === data.length ? data : data.subarray(0, length), this.readPage);
  }

  zeroed(offset: number, length: number): void {
    this.noteInFlight(offset, length);
    const hashed = this.hashedPart(offset, length);
    if (hashed > 0) this.tree.zero(offset, hashed, this.readPage);
  }

  private noteInFlight(offset: number, length: number): void {
    if (length === 0) return;
    const pageSize = this.tree.pageSize;
    for (const chunk of this.inFlight) {
      const from = Math.max(offset, chunk.start);
      const to = Math.min(offset + length, chunk.end);
      for (let page = Math.floor(from / pageSize); page * pageSize < to; page++) chunk.written.add(page);
    }
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
    const path = this.disk.imagePath;
    let handedOut = this.builtBytes;
    while (this.builtBytes < size) {
      if (generation !== this.generation) return this.built;
      if (this.stopped) throw new Error(`disk ${this.index} closed before its fingerprint was computed`);
      while (this.inFlight.length < CHUNKS_IN_FLIGHT && handedOut < size) {
        const start = handedOut;
        const end = Math.min(start + BUILD_CHUNK, size);
        const leaves = hashImagePages({ path, start, end, pageSize });
        leaves.catch(() => undefined); // awaited in order below
        this.inFlight.push({ start, end, written: new Set(), leaves });
        handedOut = end;
      }
      const chunk = this.inFlight[0]!;
      const leaves = await chunk.leaves;
      if (generation !== this.generation) return this.built;
      if (this.stopped) throw new Error(`disk ${this.index} closed before its fingerprint was computed`);
      this.inFlight.shift();
      const hashBytes = this.tree.hashBytes;
      const first = chunk.start / pageSize;
      for (let i = 0; i * hashBytes < leaves.length; i++) this.tree.setLeaf(first + i, leaves.subarray(i * hashBytes, (i + 1) * hashBytes));
      for (const page of chunk.written) this.tree.setPage(page, this.readPage(page));
      this.builtBytes = chunk.end;
    }
  }
}
