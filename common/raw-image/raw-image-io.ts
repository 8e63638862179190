import * as fs from "node:fs";

/** Creates a sparse raw image of the given size unless the file exists; a lab disk costs nothing until written. */
export function createSparseImageSync(path: string, sizeBytes: number): void {
  if (fs.existsSync(path)) return;
  const fd = fs.openSync(path, "wx");
  try {
    fs.ftruncateSync(fd, sizeBytes);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads exactly `length` bytes; past the end of a shorter file the rest reads as zeros. */
export function readFullySync(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) {
      buf.fill(0, done);
      break;
    }
    done += n;
  }
  return buf;
}
