import { NBD } from "../common/nbd-client/index.js";
import type { Capture } from "./capture.js";
import type { DiskImage } from "./disk-image.js";
import { NbdExportError, type NbdExport } from "./nbd/index.js";

/**
 * A protected disk as NBD clients and the workload generator see it: the image is written first,
 * then the write is captured in the same turn (so capture order is image order); FUA and FLUSH
 * reach the disk before the client hears back.
 */
export class CapturingExport implements NbdExport {
  readonly name: string;
  readonly size: number;
  readonly description: string;
  // One shared fd: a flush on any connection covers writes acknowledged on all of them.
  readonly canMultiConn = true;

  constructor(
    readonly diskIndex: number,
    private readonly image: DiskImage,
    private readonly capture: Capture,
  ) {
    this.name = `disk${diskIndex}`;
    this.size = image.size;
    this.description = `srlab protected disk ${diskIndex} (${image.imagePath})`;
  }

  read(offset: number, length: number): Buffer {
    return this.image.read(offset, length);
  }

  write(offset: number, data: Buffer, fua: boolean): void {
    this.refuseIfBlocked();
    this.image.write(offset, data);
    this.capture.recordData(this.diskIndex, offset, data);
    if (fua) this.image.sync();
  }

  writeZeroes(offset: number, length: number, fua: boolean): void {
    this.refuseIfBlocked();
    this.image.writeZeroes(offset, length);
    this.capture.recordZero(this.diskIndex, offset, length);
    if (fua) this.image.sync();
  }

  trim(): void {
    // Trimmed bytes are unspecified: keeping them keeps source and replica equal with nothing to send.
  }

  flush(): void {
    this.image.sync();
  }

  writeBlockedReason(): string | undefined {
    return this.capture.writesBlockedReason;
  }

  private refuseIfBlocked(): void {
    // The NBD server checks too; the workload generator calls in directly.
    const reason = this.capture.writesBlockedReason;
    if (reason) throw new NbdExportError(reason, NBD.NBD_EPERM);
  }
}
