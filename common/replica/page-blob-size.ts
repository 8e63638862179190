/** Page blobs are sized in 512-byte pages; a disk of any size fits in the rounded-up blob. */
export function pageBlobSizeFor(diskBytes: number): number {
  return Math.ceil(diskBytes / 512) * 512;
}
