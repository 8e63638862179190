export { type BlobStore, type CopyPageBlobOptions, MAX_PAGE_WRITE, type ObjectInfo, PAGE_SIZE, type PageRange } from "./blob-store.js";
export { AzureBlobStore, type AzureBlobStoreOptions } from "./azure-blob-store.js";
export { DirectoryBlobStore, type DirectoryBlobStoreOptions } from "./directory-blob-store.js";
export { type BlobStoreSettings, createBlobStore } from "./create-blob-store.js";
export {
  isRecoverableStorageError,
  isStorageNotFound,
  StorageError,
  type StorageErrorDetails,
  StorageNotFoundError,
  StorageUnavailableError,
} from "./errors.js";
export { mergeRanges } from "./page-ranges.js";
