import { SerialQueue } from "../common/async/index.js";
import { applyRecords, blobPageTarget, type PageTarget } from "../common/replica/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { rawSizeOfBlob } from "../common/vhd/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import type { DiskBackend } from "./disk-backend.js";

/**
 * A disk of a machine running in Azure: a page blob. Blob I/O is asynchronous, so every
 * operation goes through one serial queue per disk and its capture callback runs inside the
 * queued operation, right after the blob answered: capture order stays disk order, and a block
 * read for a resync takes its sequence number when it executes, not when it was asked for.
 * Azure acknowledges a page write once it is durable, so sync() has nothing to do.
 */
export class PageBlobDisk implements DiskBackend {
  readonly imagePath = "";
  private readonly queue = new SerialQueue();
  private readonly target: PageTarget;

  private constructor(
    private readonly store: BlobStore,
    readonly blobName: string,
    readonly size: number,
  ) {
    this.target = blobPageTarget(store, blobName);
  }

  /**
   * Opens an existing page blob. A failed-over disk is a fixed VHD: the disk is its data part and
   * the footer stays out of reach; a raw blob is all disk.
   */
  static async open(store: BlobStore, blobName: string): Promise<PageBlobDisk> {
    const found = await rawSizeOfBlob(store, blobName);
    if (found === undefined) throw new Error(`page blob ${blobName} does not exist in ${store.kind} storage`);
    return new PageBlobDisk(store, blobName, found.diskBytes);
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.queue.run(() => this.store.readPages(this.blobName, offset, length));
  }

  readThen<T>(offset: number, length: number, use: (data: Buffer) => T): Promise<T> {
    return this.queue.run(async () => use(await this.store.readPages(this.blobName, offset, length)));
  }

  write(offset: number, data: Buffer, after?: () => void): Promise<void> {
    return this.queue.run(async () => {
      await this.apply(WriteKind.WRITE_KIND_DATA, offset, data.length, data);
      after?.();
    });
  }

  writeZeroes(offset: number, length: number, after?: () => void): Promise<void> {
    return this.queue.run(async () => {
      await this.apply(WriteKind.WRITE_KIND_ZERO, offset, length, EMPTY);
      after?.();
    });
  }

  sync(): void {
    // Durable once acknowledged.
  }

  settled(): Promise<void> {
    return this.queue.idle();
  }

  close(): void {
    // Nothing held per disk: the blob store belongs to the agent.
  }

  /**
   * applyRecords widens unaligned writes to whole 512-byte pages (reading only the partly
   * covered edge pages), splits them into Put Page sized calls and clears long zero runs.
   */
  private async apply(kind: WriteKind, offset: number, length: number, data: Buffer): Promise<void> {
    if (length === 0) return;
    const record: WriteRecord = { sequence: 0, kind, diskIndex: 0, offset, length, data, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
    await applyRecords(this.target, [record], 0, this.size);
  }
}

const EMPTY = Buffer.alloc(0);
