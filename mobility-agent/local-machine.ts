import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../common/logger.js";
import type { MachineAssignment } from "../proto/index.js";
import { AgentStateStore } from "./agent-state.js";
import { Capture } from "./capture.js";
import { CapturingExport } from "./capturing-export.js";
import { DirtyBitmap } from "./dirty-bitmap.js";
import type { DiskBackend } from "./disk-backend.js";
import { DiskImage } from "./disk-image.js";
import { SequenceCounter } from "./sequence-counter.js";

export interface LocalMachineOptions {
  dataDir: string;
  /** Image files (on premises), created sparse at sizeBytes when missing. */
  disks?: ReadonlyArray<{ path: string; sizeBytes: number }>;
  /** Disks the caller opened instead (the page blobs of a machine running in Azure). */
  backends?: readonly DiskBackend[];
  memoryBudgetBytes: number;
  /** Defaults to the agent's default (32 MiB). */
  metadataBudgetBytes?: number;
  logger: Logger;
}

const DEFAULT_METADATA_BUDGET_BYTES = 32 * 1024 * 1024;

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
  private closed = false;

  private readonly dataDir: string;

  private constructor(options: LocalMachineOptions) {
    const { logger } = options;
    this.dataDir = options.dataDir;
    this.store = new AgentStateStore(options.dataDir);
    const clean = this.store.takeCleanShutdownMarker();
    const moved = this.store.state.diskPaths ?? {};
    this.disks =
      options.backends ?? (options.disks ?? []).map((d, i) => new DiskImage(path.resolve(moved[String(i)] ?? d.path), d.sizeBytes));
    for (const [index, image] of Object.entries(moved)) {
      const configured = options.disks?.[Number(index)]?.path;
      if (!options.backends && configured && path.resolve(configured) !== image) {
        logger.info("disk moved by a failback to an alternate location: serving the new image", { disk: Number(index), configured, image });
      }
    }
    const disks = this.disks.map((backend, index) => ({
      index,
      backend,
      bitmap: new DirtyBitmap(bitmapFile(options.dataDir, backend), backend.size),
    }));
    const counter = new SequenceCounter(path.join(options.dataDir, "sequence"));
    this.capture = new Capture(disks, counter, {
      memoryBudgetBytes: options.memoryBudgetBytes,
      metadataBudgetBytes: options.metadataBudgetBytes ?? DEFAULT_METADATA_BUDGET_BYTES,
      logger,
    });
    const state = this.store.state;
    this.capture.armed = state.protected;
    if (state.resyncRequired) this.capture.requireResync(state.resyncReason || "resync required");
    // The queue lived only in memory: after a crash nobody knows which writes the replica lacks.
    if (!clean && state.protected) this.capture.requireResync("unclean agent shutdown");
    this.capture.on("resync-required", () => this.saveResyncState());
    this.capture.on("resync-cleared", () => this.saveResyncState());
    this.saveResyncState();
    this.exports = this.disks.map((disk, index) => new CapturingExport(index, disk, this.capture));
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

  /**
   * Serves other image files of the same sizes from now on (after a failback to an alternate
   * location), through the same exports and capture; the old images are closed and left as they
   * are. Remembered in state.json across restarts.
   */
  switchImages(paths: ReadonlyMap<number, string>, logger: Logger): void {
    const checked = new Map<number, string>();
    for (const [index, file] of paths) {
      const old = this.disks[index];
      if (!(old instanceof DiskImage)) throw new Error(`disk ${index} is not an image file of this machine`);
      const target = path.resolve(file);
      if (target === old.imagePath) continue;
      let size: number;
      try {
        size = fs.statSync(target).size;
      } catch {
        throw new Error(`disk ${index}: the new image ${target} does not exist`);
      }
      if (size !== old.size) throw new Error(`disk ${index}: the new image ${target} is ${size} bytes, the disk is ${old.size}`);
      checked.set(index, target);
    }
    const disks = this.disks as DiskBackend[];
    const moved = { ...(this.store.state.diskPaths ?? {}) };
    for (const [index, target] of checked) {
      const old = disks[index]!;
      old.sync();
      const image = new DiskImage(target, old.size);
      disks[index] = image;
      const captureDisk = this.capture.disks[index]!;
      captureDisk.backend = image;
      captureDisk.bitmap = new DirtyBitmap(bitmapFile(this.dataDir, image), image.size);
      this.exports[index]!.replaceDisk(image);
      old.close();
      moved[String(index)] = target;
      logger.info("disk switched to a new image", { disk: index, from: old.imagePath, to: target });
    }
    this.store.update({ diskPaths: moved });
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
