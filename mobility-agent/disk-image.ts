import fs from "node:fs";
import path from "node:path";
import type { DiskBackend } from "./disk-backend.js";
import { readFullySync, readIntoSync } from "../common/fs/index.js";
import { createSparseImageSync } from "../common/raw-image/index.js";

const ZERO_STEP = 1024 * 1024;

/**
 * One raw disk image with synchronous pread/pwrite. Synchronous on purpose: the capture layer
 * assigns the sequence number in the same event-loop turn as the image write, so capture order is
 * image order — a block read for sync/resync and a concurrent write are ordered by their numbers.
 */
export class DiskImage implements DiskBackend {
  readonly size: number;
  readonly blobName = "";
  private fd: number;
  private zeros?: Buffer;
  /** peekThen's buffer: a resync reads the whole disk, and fresh buffers would all be garbage. */
  private scratch = Buffer.alloc(0);

  constructor(
    readonly imagePath: string,
    createSizeBytes: number,
  ) {
    fs.mkdirSync(path.dirname(imagePath), { recursive: true });
    createSparseImageSync(imagePath, createSizeBytes);
    this.fd = fs.openSync(imagePath, "r+");
    this.size = fs.fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Buffer {
    return readFullySync(this.fd, offset, length);
  }

  readThen<T>(offset: number, length: number, use: (data: Buffer) => T): T {
    return use(this.read(offset, length));
  }

  peekThen<T>(offset: number, length: number, use: (data: Buffer) => T): T {
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(length);
    const data = this.scratch.subarray(0, length);
    readIntoSync(this.fd, data, offset);
    return use(data);
  }

  write(offset: number, data: Buffer, after?: () => void): void {
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
    after?.();
  }

  writeZeroes(offset: number, length: number, after?: () => void): void {
    this.zeros ??= Buffer.alloc(ZERO_STEP);
    for (let done = 0; done < length; ) {
      const step = Math.min(ZERO_STEP, length - done);
      this.write(offset + done, this.zeros.subarray(0, step));
      done += step;
    }
    after?.();
  }

  sync(): void {
    fs.fsyncSync(this.fd);
  }

  settled(): void {
    // Every operation finished before it returned.
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
