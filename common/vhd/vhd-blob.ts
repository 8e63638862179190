import type { BlobStore } from "../storage/index.js";
import { fixedVhdFooter, type ParsedVhdFooter, parseVhdFooter, VHD_FOOTER_BYTES, vhdVirtualSize } from "./fixed-vhd.js";

/**
 * Turns a page blob holding a raw disk of `rawBytes` into a fixed VHD in place: grows it to the
 * next whole MiB (zeros) and appends the footer. Returns the blob's new size.
 */
export async function finishFixedVhdBlob(store: BlobStore, blob: string, rawBytes: number): Promise<number> {
  const virtual = vhdVirtualSize(rawBytes);
  await store.resizePageBlob(blob, virtual + VHD_FOOTER_BYTES);
  await store.writePages(blob, virtual, fixedVhdFooter({ sizeBytes: virtual }));
  return virtual + VHD_FOOTER_BYTES;
}

/**
 * The disk inside a page blob: a fixed VHD's data part when the blob ends with a VHD footer,
 * else the whole blob. undefined when the blob does not exist.
 */
export async function rawSizeOfBlob(
  store: BlobStore,
  blob: string,
  snapshot?: string,
): Promise<{ blobBytes: number; diskBytes: number; vhd?: ParsedVhdFooter } | undefined> {
  const size = await store.pageBlobSize(blob);
  if (size === undefined) return undefined;
  if (size < VHD_FOOTER_BYTES * 2) return { blobBytes: size, diskBytes: size };
  const footer = parseVhdFooter(await store.readPages(blob, size - VHD_FOOTER_BYTES, VHD_FOOTER_BYTES, snapshot));
  if (footer?.diskType === "fixed" && footer.currentSize === size - VHD_FOOTER_BYTES) return { blobBytes: size, diskBytes: footer.currentSize, vhd: footer };
  return { blobBytes: size, diskBytes: size };
}
