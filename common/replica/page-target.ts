/** Page blobs (and this module) work in 512-byte pages. */
export const PAGE_SIZE = 512;

/**
 * The replica disk as applyRecords sees it: 512-byte aligned reads, writes and clears. The lead
 * adapts the storage layer's page blob to this; tests use an in-memory buffer.
 */
export interface PageTarget {
  readPages(offset: number, length: number): Promise<Buffer>;
  /** readPages into the caller's (reused) buffer; without it the applier copies from readPages. */
  readPagesInto?(offset: number, into: Buffer): Promise<void>;
  writePages(offset: number, data: Buffer): Promise<void>;
  /** Sets the range to zeros (page blob "clear": frees the pages). */
  clearPages(offset: number, length: number): Promise<void>;
}

export function alignDown(n: number): number {
  return n - (n % PAGE_SIZE);
}

export function alignUp(n: number): number {
  const r = n % PAGE_SIZE;
  return r === 0 ? n : n + PAGE_SIZE - r;
}
