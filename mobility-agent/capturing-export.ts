import { isPromise } from "../common/async/index.js";
import { NBD } from "../common/nbd/index.js";
import type { Capture } from "./capture.js";
import type { DiskBackend } from "./disk-backend.js";
import type { DiskFingerprint } from "./disk-fingerprint.js";
import type { WriteGate } from "./write-gate.js";
import { NbdExportError, type NbdExport } from "./nbd/index.js";

/**
 * A protected disk as NBD clients and the workload generator see it: the disk is written first,
 * then the write is captured before anything else touches that disk (same turn for an image
 * file, same queued operation for a page blob), so capture order is disk order; FUA and FLUSH
 * reach durable storage before the client hears back.
 */
export class CapturingExport implements NbdExport {
  readonly name: string;
  readonly size: number;
  readonly description: string;
  // One shared fd or one shared queue per disk: a flush on any connection covers writes
  // acknowledged on all of them.
  readonly canMultiConn = true;

  constructor(
    readonly diskIndex: number,
    private readonly disk: DiskBackend,
    private readonly capture: Capture,
    /** Holds writes while a multi-machine tag is cut (shared by the machine's disks). */
    private readonly gate?: WriteGate,
    /** The disk's hash tree, updated in the same turn as the image write. */
    private readonly fingerprint?: DiskFingerprint,
  ) {
    this.name = `disk${diskIndex}`;
    this.size = disk.size;
    this.description = `srlab protected disk ${diskIndex} (${disk.imagePath || disk.blobName})`;
  }

  read(offset: number, length: number): Buffer | Promise<Buffer> {
    return this.disk.read(offset, length);
  }

  write(offset: number, data: Buffer, fua: boolean): void | Promise<void> {
    const held = this.gate?.closed;
    if (held) return held.then(() => this.write(offset, data, fua));
    this.refuseIfBlocked();
    const done = this.disk.write(offset, data, () => {
      this.fingerprint?.written(offset, data);
      this.capture.recordData(this.diskIndex, offset, data);
    });
    if (isPromise(done)) return this.watch(done);
    if (fua) this.disk.sync();
  }

  writeZeroes(offset: number, length: number, fua: boolean): void | Promise<void> {
    const held = this.gate?.closed;
    if (held) return held.then(() => this.writeZeroes(offset, length, fua));
    this.refuseIfBlocked();
    const done = this.disk.writeZeroes(offset, length, () => {
      this.fingerprint?.zeroed(offset, length);
      this.capture.recordZero(this.diskIndex, offset, length);
    });
    if (isPromise(done)) return this.watch(done);
    if (fua) this.disk.sync();
  }

  trim(): void {
    // Trimmed bytes are unspecified: keeping them keeps source and replica equal with nothing to send.
  }

  /** Also waits for writes still queued (page blobs), so "flushed" means "all captured". */
  flush(): void | Promise<void> {
    this.disk.sync();
    return this.disk.settled();
  }

  writeBlockedReason(): string | undefined {
    return this.capture.writesBlockedReason;
  }

  private refuseIfBlocked(): void {
    // The NBD server checks too; the workload generator calls in directly.
    const reason = this.capture.writesBlockedReason;
    if (reason) throw new NbdExportError(reason, NBD.NBD_EPERM);
  }

  /**
   * A page write that failed may still have reached some pages, uncaptured: only a checksum
   * resync can tell what the replica lacks.
   */
  private async watch(done: Promise<void>): Promise<void> {
    try {
      await done;
    } catch (err) {
      if (this.capture.armed) this.capture.requireResync(`write to disk ${this.diskIndex} failed: ${(err as Error).message}`);
      throw err;
    }
  }
}
