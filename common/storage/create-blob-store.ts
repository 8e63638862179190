import type { Logger } from "../logger.js";
import { AzureBlobStore } from "./azure-blob-store.js";
import type { BlobStore } from "./blob-store.js";
import { DirectoryBlobStore } from "./directory-blob-store.js";
import { StorageError } from "./errors.js";

export interface BlobStoreSettings {
  kind: "azure" | "directory";
  /** azure: storage account or Azurite connection string. */
  connectionString?: string;
  /** azure: container name (created by init()). */
  container?: string;
  /** directory: root folder (created by init()). */
  directory?: string;
  /** azure: tries per request including the first (default 3). */
  maxTries?: number;
  /** azure: per-try timeout in ms (default 60 000). */
  tryTimeoutMs?: number;
  /** directory: fsync before returning (default true). */
  fsync?: boolean;
}

/** Builds the configured backend; call init() on the result before use. */
export function createBlobStore(settings: BlobStoreSettings, logger?: Logger): BlobStore {
  switch (settings.kind) {
    case "azure": {
      if (!settings.connectionString || !settings.container) {
        throw new StorageError("azure blob store needs connectionString and container", { code: "InvalidConfiguration" });
      }
      return new AzureBlobStore({
        connectionString: settings.connectionString,
        container: settings.container,
        logger,
        maxTries: settings.maxTries,
        tryTimeoutMs: settings.tryTimeoutMs,
      });
    }
    case "directory": {
      if (!settings.directory) throw new StorageError("directory blob store needs directory", { code: "InvalidConfiguration" });
      return new DirectoryBlobStore({ directory: settings.directory, logger, fsync: settings.fsync });
    }
    default:
      throw new StorageError(`unknown blob store kind ${JSON.stringify((settings as { kind: unknown }).kind)}`, {
        code: "InvalidConfiguration",
      });
  }
}
