import { StorageError, StorageNotFoundError, StorageUnavailableError } from "./errors.js";

// Conditions ASR treats as recoverable (low disk, transient I/O, resource exhaustion).
const RECOVERABLE = new Set(["ENOSPC", "EDQUOT", "EIO", "EAGAIN", "EBUSY", "EMFILE", "ENFILE", "ENOMEM", "ETIMEDOUT", "ESTALE"]);

/** Maps a filesystem error from the directory backend onto srlab's storage errors. */
export function mapFsError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ENOENT" || code === "ENOTDIR") return new StorageNotFoundError(`${what}: not found`, { code, cause: err });
  if (code && RECOVERABLE.has(code)) return new StorageUnavailableError(`${what}: ${message}`, { code, cause: err });
  return new StorageError(`${what}: ${message}`, { code, cause: err });
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && codes.includes(code);
}
