import * as fs from "node:fs";
import type { FileHandle } from "node:fs/promises";

// Positional reads and writes may transfer fewer bytes than asked; these loop until done.

/** Writes all of `data` at `position`. */
export async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Fills `into` from `position`; past the end of the file the rest reads as zeros (a sparse disk's tail). */
export async function readFully(fh: FileHandle, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      into.fill(0, done);
      return;
    }
    done += bytesRead;
  }
}

/** readFully for synchronous callers: exactly `length` bytes from `offset`, zeros past the end. */
export function readFullySync(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  readIntoSync(fd, buf, offset);
  return buf;
}

/** Fills `into` from `offset`, synchronously; zeros past the end. */
export function readIntoSync(fd: number, into: Uint8Array, offset: number): void {
  let done = 0;
  while (done < into.length) {
    const n = fs.readSync(fd, into, done, into.length - done, offset + done);
    if (n === 0) {
      into.fill(0, done);
      return;
    }
    done += n;
  }
}
