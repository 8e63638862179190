import type { BlobStore } from "../storage/index.js";
import type { PageTarget } from "./page-target.js";

/** A page blob seen through the PageTarget interface applyRecords writes to. */
export function blobPageTarget(store: BlobStore, blobName: string): PageTarget {
  return {
    readPages: (offset, length) => store.readPages(blobName, offset, length),
    readPagesInto: (offset, into) => store.readPagesInto(blobName, offset, into),
    writePages: (offset, data) => store.writePages(blobName, offset, data),
    clearPages: (offset, length) => store.clearPages(blobName, offset, length),
  };
}
