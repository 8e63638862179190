import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { SerialQueue } from "../common/async/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { readJson } from "../common/fs/index.js";
import type { Logger } from "../common/logger.js";
import type { PrepareTargetRequest, TargetDisk } from "../proto/index.js";
import { checkOriginalImage, createSparseImage, exists, imageHasSize } from "./disk-image.js";
import { MachineTarget, type TargetRecord } from "./machine-target.js";

// Machine ids name files (state, alternate images): keep them to a safe file-name alphabet.
const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Every machine this master target fails back, persisted one JSON file per machine under
 * `<dataDir>/targets` so a restarted master target resumes each stream at its applied sequence.
 */
export class TargetRegistry {
  private readonly targets = new Map<string, MachineTarget>();
  private readonly prepareQueue = new SerialQueue();

  private constructor(
    private readonly stateDir: string,
    private readonly datastore: string,
    private readonly logger: Logger,
  ) {}

  static async open(stateDir: string, datastore: string, logger: Logger): Promise<TargetRegistry> {
    await mkdir(stateDir, { recursive: true });
    const registry = new TargetRegistry(stateDir, datastore, logger);
    for (const name of await readdir(stateDir)) {
      if (!name.endsWith(".json")) continue;
      const record = await readJson<TargetRecord>(join(stateDir, name));
      if (!record || !MACHINE_ID.test(record.machineId)) continue;
      registry.targets.set(record.machineId, new MachineTarget(record, registry.stateFile(record.machineId), registry.journalDir(record.machineId)));
      logger.info("resuming failback target", { machineId: record.machineId, appliedSequence: record.appliedSequence });
    }
    return registry;
  }

  get(machineId: string): MachineTarget | undefined {
    return this.targets.get(machineId);
  }

  /** The target of a machine that must have been prepared. */
  require(machineId: string): MachineTarget {
    checkMachineId(machineId);
    const target = this.targets.get(machineId);
    if (!target) {
      throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `machine ${machineId} has no failback target on this master target; call PrepareTarget first`);
    }
    return target;
  }

  list(): MachineTarget[] {
    return [...this.targets.values()];
  }

  /**
   * Prepares (or, when asked again with the same layout, resumes) a machine's target. A changed
   * layout starts a new target at sequence 0.
   */
  prepare(request: PrepareTargetRequest): Promise<MachineTarget> {
    return this.prepareQueue.run(async () => {
      const { machineId } = request;
      checkMachineId(machineId);
      const disks = this.layout(request);
      const previous = this.targets.get(machineId);
      if (previous && sameLayout(previous, request.alternateLocation, disks) && (await imagesIntact(disks))) {
        if (!request.alternateLocation) await checkImages(disks);
        this.logger.info("failback target already prepared; resuming", { machineId, appliedSequence: previous.appliedSequence });
        return previous;
      }
      if (request.alternateLocation) await this.createImages(disks, previous);
      else await checkImages(disks);
      // The previous target's points describe images that are about to be rewritten: they go.
      await previous?.retire({ dropPoints: true });
      const target = new MachineTarget(
        { machineId, alternateLocation: request.alternateLocation, disks, appliedSequence: 0, preparedAtMs: Date.now(), points: [] },
        this.stateFile(machineId),
        this.journalDir(machineId),
      );
      await target.save();
      this.targets.set(machineId, target);
      this.logger.info("failback target prepared", { machineId, alternateLocation: request.alternateLocation, disks: disks.length });
      return target;
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.list().map((t) => t.retire()));
  }

  private stateFile(machineId: string): string {
    return join(this.stateDir, `${machineId}.json`);
  }

  /** Copy-on-write journals of the machine's recovery points of the way back. */
  private journalDir(machineId: string): string {
    return join(this.stateDir, `${machineId}.points`);
  }

  /** The disks as they will be written: validated, with the image path each will use. */
  private layout(request: PrepareTargetRequest): TargetDisk[] {
    if (request.disks.length === 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "PrepareTarget needs at least one disk");
    const datastore = resolve(request.datastore || this.datastore);
    const seen = new Set<number>();
    return request.disks.map((d) => {
      if (seen.has(d.diskIndex)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk index ${d.diskIndex} appears twice`);
      seen.add(d.diskIndex);
      if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes <= 0) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${d.diskIndex}: size_bytes must be a positive byte count (got ${d.sizeBytes})`);
      }
      if (request.alternateLocation) {
        return { diskIndex: d.diskIndex, sizeBytes: d.sizeBytes, imagePath: join(datastore, `${request.machineId}-disk-${d.diskIndex}.img`) };
      }
      if (!d.imagePath) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${d.diskIndex}: image_path is required when failing back to the original location`);
      }
      return { diskIndex: d.diskIndex, sizeBytes: d.sizeBytes, imagePath: resolve(d.imagePath) };
    });
  }

  private async createImages(disks: TargetDisk[], previous: MachineTarget | undefined): Promise<void> {
    // Never overwrite an image this machine's earlier target did not create: it may be someone's disk.
    const ours = new Set(previous?.alternateLocation ? previous.disks.map((d) => d.imagePath) : []);
    for (const d of disks) {
      if (!ours.has(d.imagePath) && (await exists(d.imagePath))) {
        throw new SrlabError(
          ErrorCode.WRONG_STATE,
          `disk ${d.diskIndex}: ${d.imagePath} already exists; remove it or choose another datastore`,
        );
      }
    }
    for (const d of disks) {
      await mkdir(resolve(d.imagePath, ".."), { recursive: true });
      await createSparseImage(d.imagePath, d.sizeBytes);
    }
  }
}

function checkMachineId(machineId: string): void {
  if (!MACHINE_ID.test(machineId)) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `machine_id ${JSON.stringify(machineId)} must be 1-128 letters, digits, '.', '_' or '-'`);
  }
}

async function checkImages(disks: TargetDisk[]): Promise<void> {
  for (const d of disks) await checkOriginalImage(d.imagePath, d.sizeBytes, d.diskIndex);
}

async function imagesIntact(disks: TargetDisk[]): Promise<boolean> {
  for (const d of disks) if (!(await imageHasSize(d.imagePath, d.sizeBytes))) return false;
  return true;
}

function sameLayout(target: MachineTarget, alternateLocation: boolean, disks: TargetDisk[]): boolean {
  if (target.alternateLocation !== alternateLocation || target.disks.length !== disks.length) return false;
  return disks.every((d) => {
    const t = target.disk(d.diskIndex);
    return t !== undefined && t.sizeBytes === d.sizeBytes && t.imagePath === d.imagePath;
  });
}
