import path from "node:path";
import type { Logger } from "../common/logger.js";
import type { MachineAssignment } from "../proto/index.js";
import { AgentStateStore } from "./agent-state.js";
import { Capture } from "./capture.js";
import { CapturingExport } from "./capturing-export.js";
import { DirtyBitmap } from "./dirty-bitmap.js";
import type { DiskBackend } from "./disk-backend.js";
import { DiskFingerprint } from "./disk-fingerprint.js";
import { DiskImage } from "./disk-image.js";
import { SequenceCounter } from "./sequence-counter.js";
import { WriteGate } from "./write-gate.js";

export interface LocalMachineOptions {
  dataDir: string;
  /** Image files (on premises), created sparse at sizeBytes when missing. */
  disks?: ReadonlyArray<{ path: string; sizeBytes: number }>;
  /** Disks the caller opened instead (the page blobs of a machine running in Azure). */
  backends?: readonly DiskBackend[];
  memoryBudgetBytes: number;
  logger: Logger;
}

/**
 * The protected machine's disk side: its disks (image files or page blobs), dirty bitmaps, the
 * sequence, state.json and the clean-shutdown marker, with the capture built on them. All but the
 * page blobs live in dataDir. No network to the process server: the agent adds that.
 */
export class LocalMachine {
  readonly disks: readonly DiskBackend[];
  readonly capture: Capture;
  readonly exports: CapturingExport[];
  readonly store: AgentStateStore;
  /** Holds new writes on every disk while a multi-machine tag is cut. */
  readonly gate = new WriteGate();
  /** Hash trees of the image-file disks (page blobs in Azure have none), by disk index. */
  readonly fingerprints: ReadonlyArray<DiskFingerprint | undefined>;
  private closed = false;

  private constructor(options: LocalMachineOptions) {
    const { logger } = options;
    this.store = new AgentStateStore(options.dataDir);
    const clean = this.store.takeCleanShutdownMarker();
    this.disks = options.backends ?? (options.disks ?? []).map((d) => new DiskImage(path.resolve(d.path), d.sizeBytes));
    const disks = this.disks.map((backend, index) => ({
      index,
      backend,
      bitmap: new DirtyBitmap(bitmapFile(options.dataDir, backend), backend.size),
    }));
    const counter = new SequenceCounter(path.join(options.dataDir, "sequence"));
    this.capture = new Capture(disks, counter, { memoryBudgetBytes: options.memoryBudgetBytes, logger });
    const state = this.store.state;
    this.capture.armed = state.protected;
    if (state.resyncRequired) this.capture.requireResync(state.resyncReason || "resync required");
    // The queue lived only in memory: after a crash nobody knows which writes the replica lacks.
    if (!clean && state.protected) this.capture.requireResync("unclean agent shutdown");
    this.capture.on("resync-required", () => this.saveResyncState());
    this.capture.on("resync-cleared", () => this.saveResyncState());
    this.saveResyncState();
    this.fingerprints = this.disks.map((disk, index) => (disk instanceof DiskImage ? new DiskFingerprint(index, disk) : undefined));
    this.exports = this.disks.map((disk, index) => new CapturingExport(index, disk, this.capture, this.gate, this.fingerprints[index]));
  }

  /** The image files of an on-premises machine (none in Azure). */
  get images(): DiskImage[] {
    return this.disks.filter((d): d is DiskImage => d instanceof DiskImage);
  }

  static open(options: LocalMachineOptions): LocalMachine {
    return new LocalMachine(options);
  }

  /** The configuration server's registration names the machine; another name resets protection. */
  identify(machineId: string, logger: Logger): void {
    const known = this.store.state.machineId;
    if (known && known !== machineId) {
      logger.warn("registered as a different machine: previous protection state discarded", { previous: known, machineId });
      this.store.update({ protected: false, processServerAddress: undefined, processServerId: undefined, resyncRequired: false, resyncReason: "" });
      this.capture.armed = false;
    }
    this.store.update({ machineId });
  }

  protect(assignment: MachineAssignment): void {
    this.store.update({
      protected: true,
      processServerId: assignment.processServerId,
      processServerAddress: assignment.processServerAddress,
    });
    this.capture.armed = true;
  }

  /** Resolves once writes and reads still queued on the disks have run (and been captured). */
  async settle(): Promise<void> {
    await Promise.all(this.disks.map((d) => d.settled()));
  }

  /**
   * Persists what must outlive the process and leaves the clean-shutdown marker. Call settle()
   * first when the disks are asynchronous, so no queued write is captured after this.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.gate.open();
    for (const f of this.fingerprints) f?.stop();
    this.capture.persistForStop();
    this.saveResyncState();
    for (const disk of this.disks) {
      disk.sync();
      disk.close();
    }
    this.store.markCleanShutdown();
  }

  private saveResyncState(): void {
    this.store.update({ resyncRequired: this.capture.resyncRequired, resyncReason: this.capture.resyncReason });
  }
}

/** Next to the image file; for a page blob in dataDir, named after the blob it tracks. */
function bitmapFile(dataDir: string, disk: DiskBackend): string {
  if (disk.imagePath) return `${disk.imagePath}.dirty-bitmap`;
  return path.join(dataDir, `${disk.blobName.replace(/[^A-Za-z0-9._-]+/g, "_")}.dirty-bitmap`);
}
