import path from "node:path";
import type { Logger } from "../common/logger.js";
import type { MachineAssignment } from "../proto/index.js";
import { AgentStateStore } from "./agent-state.js";
import { Capture } from "./capture.js";
import { CapturingExport } from "./capturing-export.js";
import { DirtyBitmap } from "./dirty-bitmap.js";
import { DiskImage } from "./disk-image.js";
import { SequenceCounter } from "./sequence-counter.js";

export interface LocalMachineOptions {
  dataDir: string;
  disks: ReadonlyArray<{ path: string; sizeBytes: number }>;
  memoryBudgetBytes: number;
  logger: Logger;
}

/**
 * The protected machine's on-disk side: images, dirty bitmaps, the sequence, state.json and the
 * clean-shutdown marker, with the capture built on them. No network: the agent adds that.
 */
export class LocalMachine {
  readonly images: DiskImage[];
  readonly capture: Capture;
  readonly exports: CapturingExport[];
  readonly store: AgentStateStore;
  private closed = false;

  private constructor(options: LocalMachineOptions) {
    const { logger } = options;
    this.store = new AgentStateStore(options.dataDir);
    const clean = this.store.takeCleanShutdownMarker();
    this.images = options.disks.map((d) => new DiskImage(path.resolve(d.path), d.sizeBytes));
    const disks = this.images.map((image, index) => ({ index, image, bitmap: new DirtyBitmap(`${image.imagePath}.dirty-bitmap`, image.size) }));
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
    this.exports = this.images.map((image, index) => new CapturingExport(index, image, this.capture));
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

  /** Persists what must outlive the process and leaves the clean-shutdown marker. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.capture.persistForStop();
    this.saveResyncState();
    for (const image of this.images) {
      image.sync();
      image.close();
    }
    this.store.markCleanShutdown();
  }

  private saveResyncState(): void {
    this.store.update({ resyncRequired: this.capture.resyncRequired, resyncReason: this.capture.resyncReason });
  }
}
