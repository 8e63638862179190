import type { PageTarget } from "../common/replica/index.js";
import type { BlobStore } from "../common/storage/index.js";

/** A replica page blob seen through the PageTarget interface common/replica applies to. */
export function blobPageTarget(store: BlobStore, blobName: string): PageTarget {
  return {
    readPages: (offset, length) => store.readPages(blobName, offset, length),
    writePages: (offset, data) => store.writePages(blobName, offset, data),
    clearPages: (offset, length) => store.clearPages(blobName, offset, length),
  };
}

/** Page blobs are sized in 512-byte pages; a disk of any size fits in the rounded-up blob. */
export function pageBlobSizeFor(diskBytes: number): number {
  return Math.ceil(diskBytes / 512) * 512;
}
