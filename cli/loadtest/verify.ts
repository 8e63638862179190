import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { replicaBlobName } from "../../common/storage-layout/index.js";
import type { BlobStore } from "../../common/storage/index.js";

const CHUNK = 4 * 1024 * 1024;

/** SHA-256 of the first `size` bytes of a raw image file. */
export async function hashFile(path: string, size: number, onBytes?: (n: number) => void): Promise<string> {
  const fh = await open(path, "r");
  const hash = createHash("sha256");
  const buf = Buffer.alloc(CHUNK);
  try {
    for (let off = 0; off < size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - off), off);
      if (bytesRead === 0) {
        // A sparse image shorter than its disk reads as zeros beyond its end.
        hash.update(Buffer.alloc(Math.min(CHUNK, size - off)));
        off += Math.min(CHUNK, size - off);
      } else {
        hash.update(buf.subarray(0, bytesRead));
        off += bytesRead;
      }
      onBytes?.(off);
    }
  } finally {
    await fh.close();
  }
  return hash.digest("hex");
}

/**
 * SHA-256 of the first `size` bytes of a machine's replica page blob — the same bytes `srlab
 * export` writes, without writing a file. Reads whole 4 MiB windows that hold written pages (a
 * page blob reads zeros where nothing was written), so a disk of scattered small writes costs
 * a request per window, not one per write.
 */
export async function hashReplica(store: BlobStore, machineId: string, diskIndex: number, size: number, onBytes?: (n: number) => void): Promise<string | undefined> {
  const blob = replicaBlobName(machineId, diskIndex);
  const blobSize = await store.pageBlobSize(blob);
  if (blobSize === undefined) return undefined;
  const written = new Set<number>();
  for (const r of await store.getPageRanges(blob)) {
    for (let w = Math.floor(r.offset / CHUNK); w * CHUNK < r.offset + r.length; w++) written.add(w);
  }
  const hash = createHash("sha256");
  const zeros = Buffer.alloc(CHUNK);
  for (let off = 0; off < size; off += CHUNK) {
    const len = Math.min(CHUNK, size - off);
    hash.update(written.has(off / CHUNK) ? await store.readPages(blob, off, Math.min(len, blobSize - off)) : zeros.subarray(0, len));
    onBytes?.(off + len);
  }
  return hash.digest("hex");
}
