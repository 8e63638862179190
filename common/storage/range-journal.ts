import { open, stat } from "node:fs/promises";
import type { PageRange } from "./blob-store.js";
import { writeFileAtomic } from "../fs/index.js";
import { RangeSet } from "./page-ranges.js";

/**
 * Written-range tracking for the directory backend. Node exposes neither lseek(SEEK_DATA/
 * SEEK_HOLE) nor FIEMAP, and scanning for non-zero chunks would disagree with Azure (a page
 * written with zeros is still a written range), so each page blob has an append-only sidecar
 * journal of "W <offset> <length>" / "C <offset> <length>" lines, compacted when it grows.
 *
 * Invariant kept by the store: file bytes outside the written ranges are zero. Hence W is
 * appended before the data is written and C after the data is zeroed; a crash in between leaves
 * a range marked written that holds zeros, which is harmless.
 *
 * Assumes one writing process per blob (srlab has one applier per replica); readers may be many.
 */

const COMPACT_MIN_BYTES = 1 << 20;

interface Cached {
  // Inode plus birth time identify the file: inodes alone get reused after delete + recreate.
  ino: number;
  birth: number;
  size: number;
  set: RangeSet;
  /** Journal size right after the last compaction, to avoid compacting in a loop. */
  compactedSize: number;
}

export class RangeJournals {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly durable: boolean) {}

  /** Current ranges of the journal at path (throws ENOENT if missing). Read-only: shared with the cache. */
  async load(path: string): Promise<RangeSet> {
    return (await this.refresh(path)).set;
  }

  async ranges(path: string): Promise<PageRange[]> {
    return (await this.load(path)).toArray();
  }

  async append(path: string, op: "W" | "C", offset: number, length: number): Promise<void> {
    const line = `${op} ${offset} ${length}\n`;
    const fh = await open(path, "a");
    let entry: Cached | undefined;
    try {
      const before = await fh.stat();
      await fh.write(line);
      if (this.durable) await fh.datasync();
      // Cache current up to our append: apply in memory instead of re-reading the file.
      const cached = this.cache.get(path);
      if (cached && cached.ino === before.ino && cached.birth === before.birthtimeMs && cached.size === before.size) {
        if (op === "W") cached.set.add(offset, length);
        else cached.set.remove(offset, length);
        cached.size += line.length;
        entry = cached;
      }
    } finally {
      await fh.close();
    }
    entry ??= await this.refresh(path);
    if (entry.size > Math.max(COMPACT_MIN_BYTES, 4 * entry.compactedSize)) await this.compact(path, entry.set);
  }

  /** Writes a fresh journal holding exactly `ranges` (atomically replaces any existing one). */
  async write(path: string, ranges: Iterable<PageRange>): Promise<void> {
    await this.compact(path, RangeSet.from(ranges));
  }

  forget(path: string): void {
    this.cache.delete(path);
  }

  forgetUnder(prefix: string): void {
    for (const key of this.cache.keys()) if (key.startsWith(prefix)) this.cache.delete(key);
  }

  private async compact(path: string, set: RangeSet, tmpPath = `${path}.compact`): Promise<void> {
    const text = set
      .toArray()
      .map((r) => `W ${r.offset} ${r.length}\n`)
      .join("");
    await writeFileAtomic(path, text, { durable: this.durable, tmpPath });
    const st = await stat(path);
    this.cache.set(path, { ino: st.ino, birth: st.birthtimeMs, size: st.size, set: RangeSet.from(set.toArray()), compactedSize: st.size });
  }

  /** Replays only what was appended since the last look; a new inode (compaction) means a full replay. */
  private async refresh(path: string): Promise<Cached> {
    const fh = await open(path, "r");
    try {
      const st = await fh.stat();
      let entry = this.cache.get(path);
      if (!entry || entry.ino !== st.ino || entry.birth !== st.birthtimeMs || st.size < entry.size) {
        entry = { ino: st.ino, birth: st.birthtimeMs, size: 0, set: new RangeSet(), compactedSize: 0 };
        this.cache.set(path, entry);
      }
      if (st.size > entry.size) {
        const buf = Buffer.alloc(st.size - entry.size);
        const { bytesRead } = await fh.read(buf, 0, buf.length, entry.size);
        const text = buf.subarray(0, bytesRead).toString("latin1");
        // A torn trailing line (crash mid-append, or a concurrent appender) is ignored until complete.
        const end = text.lastIndexOf("\n") + 1;
        for (const line of text.slice(0, end).split("\n")) {
          const [op, off, len] = line.split(" ");
          const offset = Number(off);
          const length = Number(len);
          if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) continue;
          if (op === "W") entry.set.add(offset, length);
          else if (op === "C") entry.set.remove(offset, length);
        }
        entry.size += Buffer.byteLength(text.slice(0, end), "latin1");
      }
      return entry;
    } finally {
      await fh.close();
    }
  }
}
