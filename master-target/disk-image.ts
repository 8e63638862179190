import { open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { fsyncDir } from "../common/fs/index.js";

/**
 * Checks that an original-location image can take a differences-only failback: it exists, is a
 * regular file of exactly the disk's size, and this process may write it.
 */
export async function checkOriginalImage(path: string, sizeBytes: number, diskIndex: number): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new SrlabError(
        ErrorCode.DISK_NOT_FOUND,
        `disk ${diskIndex}: original image ${path} does not exist; fail back to an alternate location instead`,
      );
    }
    throw err;
  }
  if (!info.isFile()) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${diskIndex}: ${path} is not a regular file`);
  if (info.size !== sizeBytes) {
    throw new SrlabError(
      ErrorCode.INVALID_REPLICA_STATE,
      `disk ${diskIndex}: original image ${path} is ${info.size} bytes but the disk is ${sizeBytes} bytes; fail back to an alternate location instead`,
    );
  }
  // Opening for writing now turns a permission problem into a clear PrepareTarget error.
  const handle = await open(path, "r+").catch((err: NodeJS.ErrnoException) => {
    throw new SrlabError(
      err.code === "EACCES" || err.code === "EPERM" ? ErrorCode.AUTHORIZATION_FAILED : ErrorCode.INVALID_REPLICA_STATE,
      `disk ${diskIndex}: the master target cannot write ${path}: ${err.message}`,
      { cause: err },
    );
  });
  await handle.close();
}

/** Creates (or empties) a sparse image of sizeBytes: a full copy will fill it. */
export async function createSparseImage(path: string, sizeBytes: number): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.truncate(sizeBytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncDir(dirname(path));
}

/** True when path exists as a regular file of exactly sizeBytes. */
export async function imageHasSize(path: string, sizeBytes: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && info.size === sizeBytes;
  } catch {
    return false;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
