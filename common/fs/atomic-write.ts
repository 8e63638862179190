import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

// Errors some filesystems give for fsync on a directory; the rename itself already happened, so
// the entry is as durable as that filesystem makes it.
const DIRECTORY_SYNC_UNSUPPORTED = new Set(["EINVAL", "EISDIR", "EPERM", "EBADF"]);

function unsupported(err: unknown): boolean {
  return DIRECTORY_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? "");
}

/** Makes entries created, renamed or removed in `dir` durable (fsync of the directory). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (err) {
    if (!unsupported(err)) throw err;
  } finally {
    await fh?.close();
  }
}

/** fsyncDir for synchronous callers (state written on the agent's shutdown path). */
export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch (err) {
    if (!unsupported(err)) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  /** fsync the file before the rename and the directory after it. Default true. */
  durable?: boolean;
  /** File mode of the new file (applied whatever the umask). */
  mode?: number;
  /** Where the new content is staged before the rename (same filesystem). Default: beside `path`. */
  tmpPath?: string;
}

function stagingPath(path: string): string {
  return `${path}.${randomBytes(4).toString("hex")}.tmp`;
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content, never a
 * torn file; once it resolves (durable) the new content survives power loss: the file is fsynced
 * before the rename and its directory after it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const tmp = options.tmpPath ?? stagingPath(path);
  try {
    const fh = await open(tmp, "w", options.mode);
    try {
      await fh.writeFile(data);
      if (options.mode !== undefined) await fh.chmod(options.mode);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (durable) await fsyncDir(dirname(path));
}

/** writeFileAtomic for synchronous callers; always durable. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  // Synchronous writers cannot interleave within a process, so one staging name per file will do.
  const tmp = `${path}.tmp`;
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dirname(path));
}

/** Removes `path` (if present) and makes the removal durable. */
export function removeFileDurablySync(path: string): void {
  if (!fs.existsSync(path)) return;
  fs.rmSync(path, { force: true });
  fsyncDirSync(dirname(path));
}
