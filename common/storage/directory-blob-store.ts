// One class on purpose (about 500 lines): it implements the whole BlobStore interface over one
// directory, and objects, page blobs and snapshots share its path scheme, atomic writes and
// error mapping; the page-range bookkeeping lives in range-journal.ts and page-ranges.ts.
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { copyFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type Logger, silentLogger } from "../logger.js";
import { type BlobStore, type CopyPageBlobOptions, MAX_PAGE_WRITE, type ObjectInfo, type PageRange } from "./blob-store.js";
import { StorageError, StorageNotFoundError } from "./errors.js";
import { isErrno, mapFsError } from "./fs-errors.js";
import { KeyedMutex } from "../async/index.js";
import { fsyncDir, readFully, writeFileAtomic, writeFully } from "../fs/index.js";
import { assertValidName, compareNames } from "./names.js";
import { assertInside, assertPageAligned, chunkRanges, RangeSet } from "./page-ranges.js";
import { RangeJournals } from "./range-journal.js";

export interface DirectoryBlobStoreOptions {
  directory: string;
  logger?: Logger;
  /** fsync data, journals and directories before returning (default true). Off only for throwaway benchmarks. */
  fsync?: boolean;
}

const ZEROS = Buffer.alloc(MAX_PAGE_WRITE);

/**
 * Plain-directory backend for speed work. Layout under the root:
 *   objects/<name>                      objects, as ordinary files ("/" makes sub-directories)
 *   pages/<key>.data, <key>.ranges      page blob as a sparse file + written-range journal
 *   snapshots/<key>/<id>.data|.ranges   snapshots, sparse copies (reflink when the fs can)
 *   tmp/                                staging for atomic temp + fsync + rename
 * <key> is the page blob name made flat and filesystem-safe (see pageKey).
 */
export class DirectoryBlobStore implements BlobStore {
  readonly kind = "directory" as const;
  private readonly root: string;
  private readonly logger: Logger;
  private readonly durable: boolean;
  private readonly journals: RangeJournals;
  private readonly locks = new KeyedMutex();
  private lastSnapshotMs = 0;
  private snapshotSeq = 0;

  constructor(options: DirectoryBlobStoreOptions) {
    if (!options.directory) throw new StorageError("directory blob store needs a directory", { code: "InvalidConfiguration" });
    this.root = options.directory;
    this.logger = options.logger ?? silentLogger();
    this.durable = options.fsync ?? true;
    this.journals = new RangeJournals(this.durable);
  }

  async init(): Promise<void> {
    try {
      for (const sub of ["objects", "pages", "snapshots", "tmp"]) await mkdir(join(this.root, sub), { recursive: true });
    } catch (err) {
      throw mapFsError(err, `init ${this.root}`);
    }
  }

  // ---- helpers ----

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapFsError(err, what);
    }
  }

  private tmpPath(): string {
    return join(this.root, "tmp", `${process.pid}-${randomBytes(8).toString("hex")}`);
  }

  /** Writes a file atomically: temp file, fsync, rename, fsync of the directory. */
  private async writeAtomic(path: string, data: Buffer | string): Promise<void> {
    await writeFileAtomic(path, data, { durable: this.durable, tmpPath: this.tmpPath() });
  }

  private objectPath(name: string): string {
    assertValidName(name);
    return join(this.root, "objects", ...name.split("/"));
  }

  /** Flat, reversible-enough key for page blob files; long names are hashed to stay under NAME_MAX. */
  private pageKey(name: string): string {
    assertValidName(name);
    const encoded = encodeURIComponent(name);
    if (encoded.length <= 180) return encoded;
    return `${encoded.slice(0, 100)}~${createHash("sha256").update(name).digest("hex")}`;
  }

  private pagePaths(name: string, snapshot?: string): { data: string; ranges: string } {
    const key = this.pageKey(name);
    if (snapshot !== undefined) {
      if (!/^[0-9A-Za-z][0-9A-Za-z:.-]*$/.test(snapshot)) throw new StorageNotFoundError(`snapshot ${JSON.stringify(snapshot)} of ${name} not found`);
      const base = join(this.root, "snapshots", key, snapshot);
      return { data: `${base}.data`, ranges: `${base}.ranges` };
    }
    const base = join(this.root, "pages", key);
    return { data: `${base}.data`, ranges: `${base}.ranges` };
  }

  private async sizeOf(path: string): Promise<number> {
    return (await stat(path)).size;
  }

  // ---- objects ----

  async putObject(name: string, data: Buffer): Promise<void> {
    const path = this.objectPath(name);
    await this.guard(`put ${name}`, async () => {
      for (let attempt = 0; ; attempt++) {
        await mkdir(dirname(path), { recursive: true });
        try {
          await this.writeAtomic(path, data);
          return;
        } catch (err) {
          // A concurrent deleteObject may have pruned the freshly made parent directory.
          if (attempt < 3 && isErrno(err, "ENOENT")) continue;
          if (isErrno(err, "EISDIR", "ENOTDIR", "ENOTEMPTY", "EEXIST")) {
            throw new StorageError(`put ${name}: name clashes with an existing object prefix (directory backend limitation)`, {
              code: "BlobNameConflict",
              cause: err,
            });
          }
          throw err;
        }
      }
    });
  }

  async getObject(name: string): Promise<Buffer> {
    const path = this.objectPath(name);
    try {
      return await readFile(path);
    } catch (err) {
      if (isErrno(err, "EISDIR")) throw new StorageNotFoundError(`get ${name}: not found`, { code: "EISDIR" });
      throw mapFsError(err, `get ${name}`);
    }
  }

  async objectExists(name: string): Promise<boolean> {
    const path = this.objectPath(name);
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      if (isErrno(err, "ENOENT", "ENOTDIR")) return false;
      throw mapFsError(err, `exists ${name}`);
    }
  }

  async listObjects(prefix: string): Promise<ObjectInfo[]> {
    const base = join(this.root, "objects");
    const out: ObjectInfo[] = [];
    // Only descend into directories that can hold names starting with prefix.
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, "ENOENT", "ENOTDIR")) return;
        throw err;
      }
      for (const entry of entries) {
        const name = rel + entry.name;
        if (entry.isDirectory()) {
          const asPrefix = `${name}/`;
          if (asPrefix.startsWith(prefix) || prefix.startsWith(asPrefix)) await walk(join(dir, entry.name), asPrefix);
        } else if (entry.isFile() && name.startsWith(prefix)) {
          try {
            const st = await stat(join(dir, entry.name));
            out.push({ name, size: st.size, lastModified: st.mtime });
          } catch (err) {
            if (!isErrno(err, "ENOENT")) throw err; // deleted while listing
          }
        }
      }
    };
    await this.guard(`list ${prefix}*`, () => walk(base, ""));
    return out.sort((a, b) => compareNames(a.name, b.name));
  }

  async deleteObject(name: string): Promise<void> {
    const path = this.objectPath(name);
    await this.guard(`delete ${name}`, async () => {
      try {
        await rm(path, { force: true });
      } catch (err) {
        if (isErrno(err, "EISDIR", "ERR_FS_EISDIR")) return; // a prefix, not an object
        throw err;
      }
      // Prune empty parents so listings stay cheap; stops at the first non-empty one.
      const base = join(this.root, "objects");
      for (let dir = dirname(path); dir.startsWith(base) && dir !== base; dir = dirname(dir)) {
        try {
          await rmdir(dir);
        } catch {
          break;
        }
      }
    });
  }

  // ---- page blobs ----

  async createPageBlob(name: string, sizeBytes: number): Promise<void> {
    assertPageAligned(`create page blob ${name}`, 0, sizeBytes);
    const paths = this.pagePaths(name);
    await this.locks.run(name, () =>
      this.guard(`create page blob ${name}`, async () => {
        const existing = await this.pageBlobSize(name);
        if (existing !== undefined) {
          if (existing !== sizeBytes) {
            throw new StorageError(`create page blob ${name}: already exists with ${existing} bytes, wanted ${sizeBytes}`, {
              code: "BlobAlreadyExists",
            });
          }
          return;
        }
        // Journal first, data file last: the data file's presence means the blob is complete.
        await this.journals.write(paths.ranges, []);
        const tmp = this.tmpPath();
        const fh = await open(tmp, "w");
        try {
          await fh.truncate(sizeBytes); // sparse: no blocks allocated
          if (this.durable) await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, paths.data);
        if (this.durable) await fsyncDir(dirname(paths.data));
        this.logger.debug("page blob created", { name, sizeBytes });
      }),
    );
  }

  async resizePageBlob(name: string, sizeBytes: number): Promise<void> {
    assertPageAligned(`resize page blob ${name}`, 0, sizeBytes);
    const paths = this.pagePaths(name);
    const what = `resize page blob ${name}`;
    await this.locks.run(name, () =>
      this.guard(what, async () => {
        const fh = await open(paths.data, "r+");
        try {
          const size = (await fh.stat()).size;
          // Pages cut off must read as zero if the blob grows again: forget them first.
          if (sizeBytes < size) await this.journals.append(paths.ranges, "C", sizeBytes, size - sizeBytes);
          await fh.truncate(sizeBytes);
          if (this.durable) await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
  }

  async pageBlobSize(name: string): Promise<number | undefined> {
    const paths = this.pagePaths(name);
    try {
      return await this.sizeOf(paths.data);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return undefined;
      throw mapFsError(err, `size of ${name}`);
    }
  }

  async writePages(name: string, offset: number, data: Buffer): Promise<void> {
    assertPageAligned(`write pages ${name}`, offset, data.length);
    const paths = this.pagePaths(name);
    const what = `write pages ${name}@${offset}+${data.length}`;
    await this.locks.run(name, () =>
      this.guard(what, async () => {
        const fh = await open(paths.data, "r+");
        try {
          assertInside(what, offset, data.length, (await fh.stat()).size);
          if (data.length === 0) return;
          await this.journals.append(paths.ranges, "W", offset, data.length);
          await writeFully(fh, data, offset);
          if (this.durable) await fh.datasync();
        } finally {
          await fh.close();
        }
      }),
    );
  }

  async clearPages(name: string, offset: number, length: number): Promise<void> {
    assertPageAligned(`clear pages ${name}`, offset, length);
    const paths = this.pagePaths(name);
    const what = `clear pages ${name}@${offset}+${length}`;
    await this.locks.run(name, () =>
      this.guard(what, async () => {
        const fh = await open(paths.data, "r+");
        try {
          assertInside(what, offset, length, (await fh.stat()).size);
          if (length === 0) return;
          // Bytes outside written ranges are already zero, so only the overlap needs zeroing
          // (Node has no hole punching; this keeps clears of big unwritten areas free).
          const overlap = RangeSet.from((await this.journals.ranges(paths.ranges)).map((r) => clip(r, offset, length)));
          for (const c of chunkRanges(overlap.toArray(), ZEROS.length)) await writeFully(fh, ZEROS.subarray(0, c.length), c.offset);
          if (this.durable) await fh.datasync();
          await this.journals.append(paths.ranges, "C", offset, length);
        } finally {
          await fh.close();
        }
      }),
    );
  }

  async readPages(name: string, offset: number, length: number, snapshot?: string): Promise<Buffer> {
    // A bad length is a StorageError here too, not Buffer.alloc's RangeError.
    assertInside(`read pages ${name}`, offset, length, Number.MAX_SAFE_INTEGER);
    const out = Buffer.alloc(length);
    await this.readPagesInto(name, offset, out, snapshot);
    return out;
  }

  async readPagesInto(name: string, offset: number, into: Buffer, snapshot?: string): Promise<void> {
    const length = into.length;
    const paths = this.pagePaths(name, snapshot);
    const what = `read pages ${name}${snapshot ? `@${snapshot}` : ""} ${offset}+${length}`;
    return this.guard(what, async () => {
      const fh = await open(paths.data, "r");
      try {
        assertInside(what, offset, length, (await fh.stat()).size);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(into, done, length - done, offset + done);
          if (bytesRead === 0) {
            // Cannot happen inside the size; what a sparse file's end would read as.
            into.fill(0, done);
            break;
          }
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    });
  }

  async getPageRanges(name: string, snapshot?: string): Promise<PageRange[]> {
    const paths = this.pagePaths(name, snapshot);
    return this.guard(`page ranges of ${name}`, async () => {
      await stat(paths.data); // a leftover journal without data is not a blob
      return this.journals.ranges(paths.ranges);
    });
  }

  /** Azure-style id (ISO time, 7 fractional digits): sorts by time, unique via an exclusive create. */
  private nextSnapshotId(): string {
    const now = Date.now();
    if (now > this.lastSnapshotMs) {
      this.lastSnapshotMs = now;
      this.snapshotSeq = 0;
    } else {
      this.snapshotSeq++;
      if (this.snapshotSeq > 9999) {
        this.lastSnapshotMs++;
        this.snapshotSeq = 0;
      }
    }
    const iso = new Date(this.lastSnapshotMs).toISOString(); // 2024-01-02T03:04:05.678Z
    return `${iso.slice(0, 23)}${String(this.snapshotSeq).padStart(4, "0")}Z`;
  }

  async snapshotPageBlob(name: string): Promise<string> {
    const source = this.pagePaths(name);
    return this.locks.run(name, () =>
      this.guard(`snapshot ${name}`, async () => {
        const ranges = await this.journals.ranges(source.ranges);
        await mkdir(join(this.root, "snapshots", this.pageKey(name)), { recursive: true });
        let id: string;
        for (;;) {
          id = this.nextSnapshotId();
          try {
            // Claims the id across processes; the .data file appears last, completing the snapshot.
            await (await open(this.pagePaths(name, id).ranges, "wx")).close();
            break;
          } catch (err) {
            if (!isErrno(err, "EEXIST")) throw err;
          }
        }
        const target = this.pagePaths(name, id);
        await this.journals.write(target.ranges, ranges);
        await this.sparseCopy(source.data, target.data, ranges);
        this.logger.debug("snapshot created", { name, snapshot: id });
        return id;
      }),
    );
  }

  /** Copies a page file preserving holes: reflink when the filesystem can, else only the written ranges. */
  private async sparseCopy(
    from: string,
    to: string,
    ranges: PageRange[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<void> {
    const total = ranges.reduce((sum, r) => sum + r.length, 0);
    onProgress?.(0, total);
    const tmp = this.tmpPath();
    try {
      try {
        await copyFile(from, tmp, fsConstants.COPYFILE_FICLONE_FORCE);
        if (this.durable) {
          const fh = await open(tmp, "r+");
          try {
            await fh.sync();
          } finally {
            await fh.close();
          }
        }
        onProgress?.(total, total);
      } catch {
        const size = await this.sizeOf(from);
        const src = await open(from, "r");
        const dst = await open(tmp, "w");
        try {
          await dst.truncate(size);
          const buf = Buffer.alloc(Math.min(MAX_PAGE_WRITE, Math.max(total, 1)));
          let done = 0;
          for (const c of chunkRanges(ranges, buf.length)) {
            const slice = buf.subarray(0, c.length);
            await readFully(src, slice, c.offset);
            await writeFully(dst, slice, c.offset);
            done += c.length;
            onProgress?.(done, total);
          }
          if (this.durable) await dst.sync();
        } finally {
          await src.close();
          await dst.close();
        }
      }
      await rename(tmp, to);
      if (this.durable) await fsyncDir(dirname(to));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async deleteSnapshot(name: string, snapshot: string): Promise<void> {
    let paths: { data: string; ranges: string };
    try {
      paths = this.pagePaths(name, snapshot);
    } catch (err) {
      if (err instanceof StorageNotFoundError) return;
      throw err;
    }
    await this.guard(`delete snapshot ${name}@${snapshot}`, async () => {
      await rm(paths.data, { force: true });
      await rm(paths.ranges, { force: true });
      this.journals.forget(paths.ranges);
    });
  }

  async listSnapshots(name: string): Promise<string[]> {
    const dir = join(this.root, "snapshots", this.pageKey(name));
    return this.guard(`list snapshots of ${name}`, async () => {
      try {
        const entries = await readdir(dir);
        return entries
          .filter((e) => e.endsWith(".data"))
          .map((e) => e.slice(0, -".data".length))
          .sort();
      } catch (err) {
        if (isErrno(err, "ENOENT")) return [];
        throw err;
      }
    });
  }

  async copyPageBlob(source: string, target: string, options: CopyPageBlobOptions = {}): Promise<void> {
    const { snapshot, onProgress } = options;
    if (source === target && !snapshot) return;
    const from = this.pagePaths(source, snapshot);
    const to = this.pagePaths(target);
    const what = `copy ${source}${snapshot ? `@${snapshot}` : ""} to ${target}`;
    // Snapshots are immutable; a live source is locked too. Locks are taken in name order so
    // concurrent A->B and B->A copies cannot deadlock.
    const keys = snapshot ? [target] : [source, target].sort();
    const locked = keys.reduceRight<() => Promise<void>>((inner, key) => () => this.locks.run(key, inner), async () => {
      const ranges = await this.getPageRanges(source, snapshot);
      // Journal before data keeps "bytes outside ranges are zero" true if we crash midway.
      await this.journals.write(to.ranges, ranges);
      await this.sparseCopy(from.data, to.data, ranges, onProgress);
    });
    await this.guard(what, locked);
    this.logger.debug("page blob copied", { source, snapshot, target });
  }

  async deletePageBlob(name: string): Promise<void> {
    const paths = this.pagePaths(name);
    await this.locks.run(name, () =>
      this.guard(`delete page blob ${name}`, async () => {
        await rm(paths.data, { force: true }); // first: the blob stops existing
        await rm(paths.ranges, { force: true });
        const snapshots = join(this.root, "snapshots", this.pageKey(name));
        await rm(snapshots, { recursive: true, force: true });
        this.journals.forget(paths.ranges);
        this.journals.forgetUnder(`${snapshots}/`);
      }),
    );
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }
}

function clip(r: PageRange, offset: number, length: number): PageRange {
  const start = Math.max(r.offset, offset);
  const end = Math.min(r.offset + r.length, offset + length);
  return { offset: start, length: Math.max(0, end - start) };
}
