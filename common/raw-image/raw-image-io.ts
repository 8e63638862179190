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
