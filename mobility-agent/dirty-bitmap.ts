import fs from "node:fs";
import { removeFileDurablySync, writeFileAtomicSync } from "../common/fs/index.js";

/**
 * 1 MiB tracking blocks: a 1 TiB disk needs a 128 KiB bitmap, cheap enough to rewrite every second,
 * while re-reading a whole MiB for a small write is an acceptable cost in a degraded mode.
 */
export const BITMAP_BLOCK_BYTES = 1024 * 1024;

const MAGIC = "SRLBMAP1";
const HEADER_BYTES = 24;

/** Dirty-block bitmap of one disk, persisted in a file next to its image. */
export class DirtyBitmap {
  readonly blockCount: number;
  private bits: Uint8Array;
  private dirtyCount = 0;
  /** Changed since the last persist. */
  private modified = false;
  /** When the oldest still-dirty mark was made (for RPO). */
  dirtySinceMs = 0;

  constructor(
    readonly file: string,
    readonly diskSize: number,
    readonly blockBytes = BITMAP_BLOCK_BYTES,
  ) {
    this.blockCount = Math.ceil(diskSize / blockBytes);
    this.bits = new Uint8Array(Math.ceil(this.blockCount / 8));
    this.load();
  }

  get dirtyBlocks(): number {
    return this.dirtyCount;
  }

  /** Bytes of disk covered by dirty blocks. */
  get dirtyBytes(): number {
    return this.dirtyCount * this.blockBytes;
  }

  mark(offset: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(offset / this.blockBytes);
    const last = Math.min(this.blockCount - 1, Math.floor((offset + length - 1) / this.blockBytes));
    for (let b = first; b <= last; b++) this.set(b);
  }

  isDirty(block: number): boolean {
    return (this.bits[block >> 3]! & (1 << (block & 7))) !== 0;
  }

  clearBlock(block: number): void {
    if (!this.isDirty(block)) return;
    this.bits[block >> 3]! &= ~(1 << (block & 7));
    this.dirtyCount--;
    this.modified = true;
    if (this.dirtyCount === 0) this.dirtySinceMs = 0;
  }

  /** Dirty block indexes in ascending order (a snapshot). */
  dirtyList(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.bits.length; i++) {
      const byte = this.bits[i]!;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
    }
    return out;
  }

  clearAll(): void {
    this.bits.fill(0);
    this.dirtyCount = 0;
    this.dirtySinceMs = 0;
    this.modified = true;
  }

  /** Writes the bitmap if it changed; a clean bitmap is just a missing file. */
  persist(force = false): void {
    if (!this.modified && !force) return;
    if (this.dirtyCount === 0) {
      removeFileDurablySync(this.file);
    } else {
      const out = Buffer.alloc(HEADER_BYTES + this.bits.length);
      out.write(MAGIC, 0, "latin1");
      out.writeUInt32LE(this.blockBytes, 8);
      out.writeUInt32LE(0, 12);
      out.writeBigUInt64LE(BigInt(this.diskSize), 16);
      out.set(this.bits, HEADER_BYTES);
      writeFileAtomicSync(this.file, out);
    }
    this.modified = false;
  }

  private set(block: number): void {
    if (this.isDirty(block)) return;
    this.bits[block >> 3]! |= 1 << (block & 7);
    if (this.dirtyCount === 0) this.dirtySinceMs = Date.now();
    this.dirtyCount++;
    this.modified = true;
  }

  private load(): void {
    let raw: Buffer;
    try {
      raw = fs.readFileSync(this.file);
    } catch {
      return;
    }
    const valid =
      raw.length === HEADER_BYTES + this.bits.length &&
      raw.toString("latin1", 0, 8) === MAGIC &&
      raw.readUInt32LE(8) === this.blockBytes &&
      raw.readBigUInt64LE(16) === BigInt(this.diskSize);
    if (!valid) {
      // A bitmap for another geometry cannot say what changed: everything is dirty.
      this.mark(0, this.diskSize);
      return;
    }
    this.bits.set(raw.subarray(HEADER_BYTES));
    for (const byte of this.bits) this.dirtyCount += popcount(byte);
    if (this.dirtyCount > 0) this.dirtySinceMs = Date.now();
  }
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte; b; b &= b - 1) n++;
  return n;
}
