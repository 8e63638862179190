import { LabLayout } from "../../cli/lab/index.js";
import { type BlobStore, createBlobStore } from "../../common/storage/index.js";

/** The lab's blob storage (Azurite or a directory), opened as its daemons see it; close it after use. */
export async function openLabStore(dir: string): Promise<BlobStore> {
  const { storage } = new LabLayout(dir).read();
  const store = createBlobStore({ kind: storage.kind, connectionString: storage.connectionString, directory: storage.directory, container: "srlab" });
  await store.init();
  return store;
}
