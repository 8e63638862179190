import fs from "node:fs";
import type { NbdExport } from "./nbd-export.js";
import { readFullySync } from "../../common/fs/index.js";
import { createSparseImageSync } from "../../common/raw-image/index.js";

export interface FileExportOptions {
  name: string;
  path: string;
  description?: string;
  /** Create the file (sparse) at this size if it does not exist. Existing files keep their size. */
  createSize?: number;
}

const ZERO_CHUNK = 1024 * 1024;

/**
 * An export backed by one raw image file through a single fd with synchronous pread/pwrite.
 * Flush and FUA fsync that fd, which covers writes from every connection, so multi-conn is safe.
 */
export class FileExport implements NbdExport {
  readonly name: string;
  readonly size: number;
  readonly description?: string;
  readonly canMultiConn = true;
  readonly path: string;
  private fd: number;
  private zeros: Buffer | undefined;

  constructor(options: FileExportOptions) {
    this.name = options.name;
    this.path = options.path;
    this.description = options.description;
    if (options.createSize !== undefined) createSparseImageSync(options.path, options.createSize);
    this.fd = fs.openSync(options.path, "r+");
    this.size = fs.fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Buffer {
    return readFullySync(this.fd, offset, length);
  }

  write(offset: number, data: Buffer, fua: boolean): void {
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
    if (fua) fs.fdatasyncSync(this.fd);
  }

  writeZeroes(offset: number, length: number, fua: boolean): void {
    this.zeros ??= Buffer.alloc(ZERO_CHUNK);
    let done = 0;
    while (done < length) {
      const step = Math.min(ZERO_CHUNK, length - done);
      this.write(offset + done, this.zeros.subarray(0, step), false);
      done += step;
    }
    if (fua) fs.fdatasyncSync(this.fd);
  }

  trim(): void {
    // Trimmed content is unspecified by NBD; keeping the bytes keeps replicas trivially equal.
  }

  flush(): void {
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
