import fs from "node:fs";
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
  /** The replicated disks by index (a removed disk leaves a gap: indexes are never reused). */
  readonly entries: Array<{ index: number; backend: DiskBackend }>;
  readonly capture: Capture;
  /** One per replicated disk; updated in place when a disk is added or removed. */
  readonly exports: CapturingExport[];
  readonly store: AgentStateStore;
  private readonly dataDir: string;
  /** Holds new writes on every disk while a multi-machine tag is cut. */
  readonly gate = new WriteGate();
  /** Hash trees of the image-file disks (page blobs in Azure have none), by disk index. */
  readonly fingerprints: Array<DiskFingerprint | undefined> = [];
  private closed = false;

  private constructor(options: LocalMachineOptions) {
    const { logger } = options;
    this.dataDir = options.dataDir;
    this.store = new AgentStateStore(options.dataDir);
    const clean = this.store.takeCleanShutdownMarker();
    const removed = new Set(this.store.state.removedDisks ?? []);
    // A failback to an alternate location moved disks onto new images (by disk index).
    const moved = this.store.state.diskPaths ?? {};
    const configured = options.backends ?? (options.disks ?? []).map((d, i) => new DiskImage(path.resolve(moved[String(i)] ?? d.path), d.sizeBytes));
    for (const [index, image] of Object.entries(moved)) {
      const configuredPath = options.disks?.[Number(index)]?.path;
      if (!options.backends && configuredPath && path.resolve(configuredPath) !== image) {
        logger.info("disk moved by a failback to an alternate location: serving the new image", { disk: Number(index), configured: configuredPath, image });
      }
    }
    const added = options.backends
      ? []
      : (this.store.state.addedDisks ?? []).map((d) => ({ index: d.index, backend: new DiskImage(moved[String(d.index)] ?? d.path, d.sizeBytes) as DiskBackend }));
    this.entries = [...configured.map((backend, index) => ({ index, backend })), ...added].filter((e) => !removed.has(e.index));
    const disks = this.entries.map(({ index, backend }) => ({
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
    for (const { index, backend } of this.entries) this.fingerprints[index] = fingerprintOf(index, backend);
    this.exports = this.entries.map(({ index, backend }) => new CapturingExport(index, backend, this.capture, this.gate, this.fingerprints[index]));
  }

  get disks(): DiskBackend[] {
    return this.entries.map((e) => e.backend);
  }

  /**
   * A new, empty image file as the machine's next disk, captured from now on; the caller
   * declares it to the process server before exporting it. Indexes are never reused, so older
   * recovery points keep naming the disks they hold.
   */
  addDisk(sizeBytes: number): CapturingExport {
    const state = this.store.state;
    const known = [...this.entries.map((e) => e.index), ...(state.addedDisks ?? []).map((d) => d.index), ...(state.removedDisks ?? [])];
    const index = Math.max(-1, ...known) + 1;
    const file = path.resolve(this.dataDir, `disk-${index}.img`);
    if (fs.existsSync(file)) throw new Error(`cannot add disk ${index}: ${file} already exists (an image from elsewhere?); move it away first`);
    const backend = new DiskImage(file, sizeBytes);
    this.store.update({ addedDisks: [...(state.addedDisks ?? []), { index, path: file, sizeBytes }] });
    this.entries.push({ index, backend });
    this.capture.addDisk({ index, backend, bitmap: new DirtyBitmap(bitmapFile(this.dataDir, backend), backend.size) });
    this.fingerprints[index] = fingerprintOf(index, backend);
    const exp = new CapturingExport(index, backend, this.capture, this.gate, this.fingerprints[index]);
    this.exports.push(exp);
    return exp;
  }

  /** Stops capturing and exporting a disk; its image file stays where it is. */
  async removeDisk(index: number): Promise<{ path: string }> {
    const at = this.entries.findIndex((e) => e.index === index);
    if (at < 0) throw new Error(`no disk ${index} (the machine has ${this.entries.map((e) => e.index).join(", ")})`);
    if (this.entries.length === 1) throw new Error(`disk ${index} is the machine's last disk`);
    const [entry] = this.entries.splice(at, 1);
    this.exports.splice(
      this.exports.findIndex((e) => e.diskIndex === index),
      1,
    );
    this.capture.removeDisk(index);
    this.fingerprints[index]?.stop();
    this.fingerprints[index] = undefined;
    this.store.update({ removedDisks: [...(this.store.state.removedDisks ?? []), index] });
    await entry!.backend.settled();
    entry!.backend.sync();
    entry!.backend.close();
    return { path: entry!.backend.imagePath };
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

  /** Protection disabled: forgotten across restarts too; writes are no longer captured. */
  unprotect(): void {
    this.store.update({ protected: false, processServerId: undefined, processServerAddress: undefined, resyncRequired: false, resyncReason: "" });
    this.capture.disarm();
  }

  /**
   * Serves other image files of the same sizes from now on (after a failback to an alternate
   * location), through the same exports and capture; the old images are closed and left as they
   * are. Remembered in state.json across restarts.
   */
  switchImages(paths: ReadonlyMap<number, string>, logger: Logger): void {
    const checked = new Map<number, string>();
    for (const [index, file] of paths) {
      const old = this.entries.find((e) => e.index === index)?.backend;
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
    const moved = { ...(this.store.state.diskPaths ?? {}) };
    for (const [index, target] of checked) {
      const entry = this.entries.find((e) => e.index === index)!;
      const old = entry.backend as DiskImage;
      old.sync();
      const image = new DiskImage(target, old.size);
      entry.backend = image;
      const captureDisk = this.capture.disks.find((d) => d.index === index)!;
      captureDisk.backend = image;
      captureDisk.bitmap = new DirtyBitmap(bitmapFile(this.dataDir, image), image.size);
      this.fingerprints[index]?.stop();
      this.fingerprints[index] = fingerprintOf(index, image);
      this.exports.find((e) => e.diskIndex === index)!.replaceDisk(image, this.fingerprints[index]);
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

function fingerprintOf(index: number, backend: DiskBackend): DiskFingerprint | undefined {
  return backend instanceof DiskImage ? new DiskFingerprint(index, backend) : undefined;
}
