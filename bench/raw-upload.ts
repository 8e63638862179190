// The reference: the same number of bytes uploaded straight to the same Azurite, no srlab involved.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { BlobServiceClient } from "@azure/storage-blob";

export interface RawUploadResult {
  bytes: number;
  seconds: number;
  blobs: number;
}

/** Uploads totalBytes as blobBytes-sized block blobs, `concurrency` at a time, into a scratch container. */
export async function rawBlobUpload(
  connectionString: string,
  totalBytes: number,
  { blobBytes = 8 * 1024 * 1024, concurrency = 4 } = {},
): Promise<RawUploadResult> {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const container = service.getContainerClient(`bench-raw-${Date.now()}`);
  await container.create();
  // Incompressible like the worst case of a segment; Azurite stores bytes as they come either way.
  const payload = randomBytes(blobBytes);
  const count = Math.ceil(totalBytes / blobBytes);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const length = Math.min(blobBytes, totalBytes - i * blobBytes);
      await container.getBlockBlobClient(`blob-${i}`).upload(payload.subarray(0, length), length);
    }
  };
  try {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    return { bytes: totalBytes, seconds: (performance.now() - t0) / 1000, blobs: count };
  } finally {
    await container.deleteIfExists().catch(() => {});
  }
}
