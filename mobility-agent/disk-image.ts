import fs from "node:fs";
import path from "node:path";
import type { DiskBackend } from "./disk-backend.js";

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

  constructor(
    readonly imagePath: string,
    createSizeBytes: number,
  ) {
    if (!fs.existsSync(imagePath)) {
      fs.mkdirSync(path.dirname(imagePath), { recursive: true });
      const fd = fs.openSync(imagePath, "wx");
      // Sparse: a lab disk of many GiB costs nothing until written.
      fs.ftruncateSync(fd, createSizeBytes);
      fs.closeSync(fd);
    }
    this.fd = fs.openSync(imagePath, "r+");
    this.size = fs.fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) {
        buf.fill(0, done);
        break;
      }
      done += n;
    }
    return buf;
  }

  readThen<T>(offset: number, length: number, use: (data: Buffer) => T): T {
    return use(this.read(offset, length));
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
