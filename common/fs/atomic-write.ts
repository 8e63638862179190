import { open, rename, writeFile } from "node:fs/promises";

/** Makes entries created, renamed or removed in dir durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces path with data so that a crash leaves either the old or the new content. */
export async function writeFileAtomic(path: string, dir: string, data: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data);
  const fh = await open(tmp, "r+");
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}
