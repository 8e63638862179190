import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { RecoveryPointType } from "../proto/index.js";

/** A recovery point of the way back, as the target record keeps it. */
export interface JournalPoint {
  pointId: string;
  /** Stream sequence (ApplyWrites numbering) the images were at. */
  sequence: number;
  type: RecoveryPointType;
  tagName: string;
  consistencyGroup: string;
  timeMs: number;
  /** A payload before the point was read from the source disk after it (metadata mode). */
  metadataMode?: boolean;
}

/** Granularity of the copy-on-write journal: the first write to a block after a point saves it whole. */
export const JOURNAL_BLOCK_BYTES = 64 * 1024;
/** disk index u32, length u32, offset u64. */
const ENTRY_HEADER = 16;

export interface BlockIo {
  read(diskIndex: number, offset: number, length: number): Promise<Buffer>;
  write(diskIndex: number, offset: number, data: Buffer): Promise<void>;
  size(diskIndex: number): number;
}

/**
 * Recovery points of the images a master target writes, as copy-on-write block journals: the
 * journal of point i holds, for every block first written after point i (and before point i+1),
 * its bytes at point i. The images stay the latest state; point k is the images with, for each
 * block, the entry of the first journal at or after k that has it. A point costs only the blocks
 * changed after it, and the newest journal is the only one that grows.
 */
export class PointJournal {
  /** Blocks already saved in the newest point's journal ("disk:block"). */
  private saved = new Set<string>();

  constructor(
    private readonly dir: string,
    readonly points: JournalPoint[],
  ) {
    mkdirSync(dir, { recursive: true });
    const newest = points.at(-1);
    if (newest) this.saved = new Set(this.scan(newest.pointId, true).keys());
  }

  get newest(): JournalPoint | undefined {
    return this.points.at(-1);
  }

  /**
   * Saves the current bytes of every block these ranges touch that the newest point's journal
   * lacks, durably, before the caller overwrites them. Nothing to do before the first point.
   */
  async preserve(ranges: ReadonlyArray<{ diskIndex: number; offset: number; length: number }>, io: BlockIo): Promise<number> {
    const newest = this.newest;
    if (!newest) return 0;
    let fd: number | undefined;
    let saved = 0;
    try {
      for (const r of ranges) {
        if (r.length <= 0) continue;
        const first = Math.floor(r.offset / JOURNAL_BLOCK_BYTES);
        const last = Math.floor((r.offset + r.length - 1) / JOURNAL_BLOCK_BYTES);
        for (let block = first; block <= last; block++) {
          const key = `${r.diskIndex}:${block}`;
          if (this.saved.has(key)) continue;
          const offset = block * JOURNAL_BLOCK_BYTES;
          const length = Math.min(JOURNAL_BLOCK_BYTES, io.size(r.diskIndex) - offset);
          const data = await io.read(r.diskIndex, offset, length);
          fd ??= openSync(this.file(newest.pointId), "a");
          const header = Buffer.alloc(ENTRY_HEADER);
          header.writeUInt32LE(r.diskIndex, 0);
          header.writeUInt32LE(length, 4);
          header.writeBigUInt64LE(BigInt(offset), 8);
          writeFully(fd, header);
          writeFully(fd, data);
          this.saved.add(key);
          saved++;
        }
      }
      // The old bytes are on disk before the new ones can be.
      if (fd !== undefined) fdatasyncSync(fd);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return saved;
  }

  /** A new newest point: the images as they are now (the caller made them durable). */
  add(point: JournalPoint): void {
    if (this.points.some((p) => p.pointId === point.pointId)) return;
    this.points.push(point);
    // A journal left by a crash between its first entries and the record's save belongs to this
    // very point (ids are unique per target): its entries are still the bytes at the point.
    this.saved = new Set(this.scan(point.pointId, true).keys());
  }

  /** Drops the oldest points taken before `beforeMs`, keeping at least the newest; returns them. */
  prune(beforeMs: number): JournalPoint[] {
    const removed: JournalPoint[] = [];
    while (this.points.length > 1 && this.points[0]!.timeMs < beforeMs) {
      const p = this.points.shift()!;
      rmSync(this.file(p.pointId), { force: true });
      removed.push(p);
    }
    return removed;
  }

  /**
   * Writes the bytes of point `pointId` back into the images; later points are dropped, since the
   * images no longer lead to them. Idempotent until the caller saves the shortened point list.
   */
  async restore(pointId: string, io: BlockIo): Promise<{ point: JournalPoint; blocks: number; dropped: JournalPoint[] }> {
    const k = this.points.findIndex((p) => p.pointId === pointId);
    if (k < 0) {
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        `no recovery point ${pointId} on this master target (have: ${this.points.map((p) => p.pointId).join(", ") || "none"})`,
      );
    }
    const done = new Set<string>();
    let blocks = 0;
    for (const p of this.points.slice(k)) {
      const fd = openOptional(this.file(p.pointId));
      if (fd === undefined) continue;
      try {
        for (const [key, entry] of this.scan(p.pointId, false, fd)) {
          if (done.has(key)) continue;
          done.add(key);
          const data = Buffer.alloc(entry.length);
          readFully(fd, data, entry.dataAt);
          await io.write(entry.diskIndex, entry.offset, data);
          blocks++;
        }
      } finally {
        closeSync(fd);
      }
    }
    return { point: this.points[k]!, blocks, dropped: this.points.slice(k + 1) };
  }

  /** After a restore is durable: the point is the newest again, with nothing changed since. */
  truncateAfter(pointId: string): void {
    const k = this.points.findIndex((p) => p.pointId === pointId);
    if (k < 0) return;
    for (const p of this.points.splice(k + 1)) rmSync(this.file(p.pointId), { force: true });
    rmSync(this.file(pointId), { force: true });
    this.saved.clear();
  }

  /** Drops every point and journal (a new target). */
  clear(): void {
    this.points.splice(0);
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.saved.clear();
  }

  private file(pointId: string): string {
    return join(this.dir, `${pointId}.journal`);
  }

  /** Entries of one journal by block; a torn last entry (crash mid-append) is cut off when `repair`. */
  private scan(pointId: string, repair: boolean, openFd?: number): Map<string, { diskIndex: number; offset: number; length: number; dataAt: number }> {
    const entries = new Map<string, { diskIndex: number; offset: number; length: number; dataAt: number }>();
    const fd = openFd ?? openOptional(this.file(pointId), repair ? "r+" : "r");
    if (fd === undefined) return entries;
    try {
      const size = fstatSync(fd).size;
      const header = Buffer.alloc(ENTRY_HEADER);
      let at = 0;
      while (at + ENTRY_HEADER <= size) {
        readFully(fd, header, at);
        const diskIndex = header.readUInt32LE(0);
        const length = header.readUInt32LE(4);
        const offset = Number(header.readBigUInt64LE(8));
        if (at + ENTRY_HEADER + length > size) break;
        const key = `${diskIndex}:${Math.floor(offset / JOURNAL_BLOCK_BYTES)}`;
        // The first entry of a block is the one that counts (a replayed batch may repeat it).
        if (!entries.has(key)) entries.set(key, { diskIndex, offset, length, dataAt: at + ENTRY_HEADER });
        at += ENTRY_HEADER + length;
      }
      if (repair && at < size) ftruncateSync(fd, at);
    } finally {
      if (openFd === undefined) closeSync(fd);
    }
    return entries;
  }
}

function openOptional(file: string, flags = "r"): number | undefined {
  try {
    return openSync(file, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function writeFully(fd: number, data: Buffer): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done);
}

function readFully(fd: number, into: Buffer, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error(`journal ended early at ${position + done}`);
    done += n;
  }
}

export function pointTypeName(type: RecoveryPointType): string {
  return type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT ? "app" : "crash";
}
