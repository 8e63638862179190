/**
 * One disk as the NBD server sees it. The agent's capturing export implements this; FileExport
 * is the plain file-backed one for tests and benchmarks.
 */
export interface NbdExport {
  readonly name: string;
  /** Bytes; fixed for the export's lifetime. */
  readonly size: number;
  readonly description?: string;
  /**
   * Advertise NBD_FLAG_CAN_MULTI_CONN. Only set it when every connection sees the same data and a
   * flush (or FUA) completed on one connection makes writes acknowledged on all connections durable —
   * true for a single shared file descriptor, not for per-connection caches. Default false.
   */
  readonly canMultiConn?: boolean;
  /** Must return exactly `length` bytes. */
  read(offset: number, length: number): Promise<Buffer> | Buffer;
  /** `data` may be a view into a network buffer: copy it if you keep it after the promise settles. */
  write(offset: number, data: Buffer, fua: boolean): Promise<void> | void;
  /** The range must read back as zeros afterwards (the server never asks for holes, so NO_HOLE is always met). */
  writeZeroes(offset: number, length: number, fua: boolean): Promise<void> | void;
  /** Advisory: the content of a trimmed range is unspecified afterwards; a no-op is valid. */
  trim(offset: number, length: number): Promise<void> | void;
  flush(): Promise<void> | void;
  /** When a string is returned, writes are refused with EPERM (e.g. "writes stopped for failover"). */
  writeBlockedReason?(): string | undefined;
}

/** Throw from an export method to choose the NBD errno the client sees (default EIO). */
export class NbdExportError extends Error {
  constructor(
    message: string,
    /** Wire errno, e.g. NBD.NBD_ENOSPC. */
    readonly nbdErrno: number,
  ) {
    super(message);
    this.name = "NbdExportError";
  }
}
