import { LabLayout } from "../../cli/lab/index.js";
import { type BlobStore, createBlobStore } from "../../common/storage/index.js";

/** The lab's blob storage (Azurite or a directory), opened as its daemons see it; close it after use. */
export async function openLabStore(dir: string): Promise<BlobStore> {
  const { storage } = new LabLayout(dir).read();
  const store = createBlobStore({ kind: storage.kind, connectionString: storage.connectionString, directory: storage.directory, container: "srlab" });
  await store.init();
  return store;
}

/** Damages a disk behind srlab's back: flips the byte at `at` of a page blob (rewriting its 512-byte sector). */
export async function flipByteInBlob(dir: string, blob: string, at: number): Promise<void> {
  const store = await openLabStore(dir);
  try {
    const start = at - (at % 512);
    const sector = await store.readPages(blob, start, 512);
    sector[at - start]! ^= 0xff;
    await store.writePages(blob, start, sector);
  } finally {
    await store.close();
  }
}
