import fs from "node:fs";
import path from "node:path";

/** Replaces a file so that a crash leaves either the old or the new content, never a torn mix. */
export function writeFileDurably(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDirectory(path.dirname(file));
}

export function removeFileDurably(file: string): void {
  if (!fs.existsSync(file)) return;
  fs.rmSync(file, { force: true });
  syncDirectory(path.dirname(file));
}

function syncDirectory(dir: string): void {
  // The rename is only durable once the directory entry is; not every platform allows this.
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}
