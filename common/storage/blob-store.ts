/** The one storage interface srlab uses; see DESIGN.md §2 "Storage". */

/** Azure page size: every page-blob offset, length and size is a multiple of this. */
export const PAGE_SIZE = 512;
/** Largest single Put Page call Azure accepts; bigger writes are split into calls of this size. */
export const MAX_PAGE_WRITE = 4 * 1024 * 1024;

export interface PageRange {
  offset: number;
  length: number;
}

export interface ObjectInfo {
  name: string;
  size: number;
  lastModified: Date;
}

export interface CopyPageBlobOptions {
  /** Copy this snapshot of the source instead of its current content. */
  snapshot?: string;
  /** Called after each chunk with bytes copied so far and total bytes to copy (written ranges only). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Objects (log segments, small JSON state) and page blobs (replica disks: 512-byte aligned,
 * sparse). Object and page-blob names share the "/"-separated naming of Azure blob names.
 */
export interface BlobStore {
  readonly kind: "azure" | "directory";
  /** Create the container / directory; safe to call again. */
  init(): Promise<void>;

  putObject(name: string, data: Buffer): Promise<void>;
  /** Throws StorageNotFoundError when missing. */
  getObject(name: string): Promise<Buffer>;
  objectExists(name: string): Promise<boolean>;
  /** Objects whose name starts with prefix, sorted by name. Page blobs are not listed. */
  listObjects(prefix: string): Promise<ObjectInfo[]>;
  /** No error if missing. */
  deleteObject(name: string): Promise<void>;

  /** Idempotent; sizeBytes must be a multiple of 512. Throws StorageError if it exists with another size. */
  createPageBlob(name: string, sizeBytes: number): Promise<void>;
  /** undefined when missing. */
  pageBlobSize(name: string): Promise<number | undefined>;
  /** Grows (zeros) or shrinks (pages beyond are dropped) an existing page blob; sizeBytes a multiple of 512. */
  resizePageBlob(name: string, sizeBytes: number): Promise<void>;
  /** offset and data.length multiples of 512; split into calls of at most 4 MiB internally. */
  writePages(name: string, offset: number, data: Buffer): Promise<void>;
  /** offset and length multiples of 512. */
  clearPages(name: string, offset: number, length: number): Promise<void>;
  /** Any range inside the blob (no alignment needed); zeros where unwritten. */
  readPages(name: string, offset: number, length: number, snapshot?: string): Promise<Buffer>;
  /**
   * readPages into the caller's buffer: `into.length` bytes from `offset`. For callers that reuse
   * their buffers (the applier's block reads): a fresh multi-MiB buffer per read costs more than
   * the read's copy.
   */
  readPagesInto(name: string, offset: number, into: Buffer, snapshot?: string): Promise<void>;
  /** Written (non-cleared) ranges, merged and sorted. */
  getPageRanges(name: string, snapshot?: string): Promise<PageRange[]>;
  /** Returns the snapshot id. */
  snapshotPageBlob(name: string): Promise<string>;
  deleteSnapshot(name: string, snapshot: string): Promise<void>;
  /** Snapshot ids of the blob, oldest first. */
  listSnapshots(name: string): Promise<string[]>;
  /** Target gets the same size and content; only written ranges are transferred. */
  copyPageBlob(source: string, target: string, options?: CopyPageBlobOptions): Promise<void>;
  /** Deletes its snapshots too; no error if missing. */
  deletePageBlob(name: string): Promise<void>;

  close(): Promise<void>;
}
