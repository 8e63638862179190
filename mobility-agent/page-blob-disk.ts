import { applyRecords, blobPageTarget, type PageTarget } from "../common/replica/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { rawSizeOfBlob } from "../common/vhd/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import type { DiskBackend } from "./disk-backend.js";
import { type Access, OverlapTracker } from "./nbd/index.js";

/** Put Page works on whole 512-byte pages: a partly covered page is read, patched and written back. */
const PAGE = 512;

/**
 * A disk of a machine running in Azure: a page blob. Blob I/O is asynchronous, so operations run
 * concurrently when their pages are disjoint and in the order they were asked for when they
 * overlap (one OverlapTracker per disk), and each capture callback runs right after the blob
 * answered, before any overlapping operation starts: capture order stays disk order wherever it
 * matters, and a block read for a resync takes its sequence number when it executes, not when it
 * was asked for. Azure acknowledges a page write once it is durable, so sync() has nothing to do.
 */
export class PageBlobDisk implements DiskBackend {
  readonly imagePath = "";
  private readonly order = new OverlapTracker();
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
    return this.ordered(offset, length, "read", () => this.store.readPages(this.blobName, offset, length));
  }

  readThen<T>(offset: number, length: number, use: (data: Buffer) => T): Promise<T> {
    return this.ordered(offset, length, "read", async () => use(await this.store.readPages(this.blobName, offset, length)));
  }

  /** Every read of a page blob is a fresh buffer anyway. */
  peekThen<T>(offset: number, length: number, use: (data: Buffer) => T): Promise<T> {
    return this.readThen(offset, length, use);
  }

  write(offset: number, data: Buffer, after?: () => void): Promise<void> {
    return this.ordered(offset, data.length, "write", async () => {
      await this.apply(WriteKind.WRITE_KIND_DATA, offset, data.length, data);
      after?.();
    });
  }

  writeZeroes(offset: number, length: number, after?: () => void): Promise<void> {
    return this.ordered(offset, length, "write", async () => {
      await this.apply(WriteKind.WRITE_KIND_ZERO, offset, length, EMPTY);
      after?.();
    });
  }

  sync(): void {
    // Durable once acknowledged.
  }

  settled(): Promise<void> {
    return this.order.settled() ?? Promise.resolve();
  }

  close(): void {
    // Nothing held per disk: the blob store belongs to the agent.
  }

  /** Runs `op` once every earlier operation on overlapping pages has finished. */
  private async ordered<T>(offset: number, length: number, access: Access, op: () => Promise<T>): Promise<T> {
    const start = Math.floor(offset / PAGE) * PAGE;
    const ticket = this.order.enter(start, Math.ceil((offset + length) / PAGE) * PAGE - start, access);
    try {
      if (ticket.ready) await ticket.ready;
      return await op();
    } finally {
      this.order.leave(ticket);
    }
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
