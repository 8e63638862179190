import { type BlobStore, createBlobStore } from "../../common/storage/index.js";
import type { LabManifest } from "../lab/index.js";

/** The lab's storage, as the CLI reaches it (to read replicas). */
export function createStorage(manifest: LabManifest): BlobStore {
  const s = manifest.storage;
  return createBlobStore({ kind: s.kind, connectionString: s.connectionString, directory: s.directory, container: "srlab" });
}
