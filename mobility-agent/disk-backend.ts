/**
 * One disk of the machine as capture, sync, the NBD export and the workload see it: an image
 * file on premises (synchronous) or a page blob in Azure (asynchronous, queued per disk).
 *
 * The `after`/`use` callbacks are where the caller captures: they run right after the I/O and
 * before any other operation on the same disk, so capture order is disk order either way.
 * Synchronous backends return plain values, so the file path never pays for a promise.
 */
export interface DiskBackend {
  /** Bytes; fixed while open. */
  readonly size: number;
  /** The image file ("" for a page blob). */
  readonly imagePath: string;
  /** The page blob ("" for an image file). */
  readonly blobName: string;
  /** Sees every write started before it. */
  read(offset: number, length: number): Buffer | Promise<Buffer>;
  /** Reads, then hands the bytes to `use` in the same step (sync, resync and the bitmap drain). */
  readThen<T>(offset: number, length: number, use: (data: Buffer) => T): T | Promise<T>;
  /**
   * As readThen, but `data` is valid only inside `use`: the backend may read into memory it
   * reuses. For sync, which compares every block and keeps few (recordBlock copies what it keeps).
   */
  peekThen<T>(offset: number, length: number, use: (data: Buffer) => T): T | Promise<T>;
  write(offset: number, data: Buffer, after?: () => void): void | Promise<void>;
  writeZeroes(offset: number, length: number, after?: () => void): void | Promise<void>;
  /** Makes finished writes durable; a no-op where a finished write already is (Azure). */
  sync(): void;
  /** Resolves once every operation started so far has finished. */
  settled(): void | Promise<void>;
  close(): void;
}
