import type { RecoveryPointDoc } from "../../common/recovery/index.js";
import { type BlobStore, isStorageNotFound } from "../../common/storage/index.js";
import { type RecoveryPoint, RecoveryPointType, ReplicationDirection } from "../../proto/index.js";
import type { Machine } from "../machine.js";
import type { ReplicaDisk } from "../machine-registry.js";
import { pointObjectName, pointsPrefix, replicaBlobName } from "../../common/storage-layout/index.js";

export type PointKind = RecoveryPointDoc["type"];

/** `machines/<id>/points/<pointId>.json`: one format, shared with recovery (common/recovery). */
export type PointDocument = RecoveryPointDoc;

export interface PointSpec {
  type: PointKind;
  sequence: number;
  tagName?: string;
  consistencyGroup?: string;
  /** Some write up to `sequence` carries bytes read from the disk after `sequence` (metadata mode). */
  metadataMode?: boolean;
  /** Made at a BASE record: a disk's copy (initial replication, resync, a disk added) completed here. */
  base?: boolean;
}

/** Disks whose first copy is complete at `sequence`: a point there covers exactly these. */
export function disksCoveredAt(machine: Machine, sequence: number): ReplicaDisk[] {
  return machine.diskList().filter((d) => d.baseSequence !== undefined && d.baseSequence <= sequence && !d.removed);
}

/**
 * Point ids are derived from machine, kind and sequence, so replaying a TAG after a restart finds
 * the point already made instead of making a second one (and the CS's report is idempotent).
 */
export function pointIdOf(machineId: string, type: PointKind, sequence: number): string {
  return `${machineId}-${type === "app-consistent" ? "app" : "crash"}-${String(sequence).padStart(20, "0")}`;
}

/** Recovery points as replica snapshots plus a JSON description, both in storage. */
export class PointStore {
  constructor(private readonly store: BlobStore) {}

  /** Snapshots every disk that existed at `spec.sequence`; the caller has applied exactly up to it. */
  async create(machine: Machine, spec: PointSpec, now = new Date()): Promise<{ doc: PointDocument; created: boolean }> {
    const id = pointIdOf(machine.id, spec.type, spec.sequence);
    const existing = await this.read(machine.id, id);
    if (existing) return { doc: existing, created: false };
    const disks = machine.diskList().filter((d) => !d.removed);
    const covered = disksCoveredAt(machine, spec.sequence);
    const snapshots: Record<string, string> = {};
    for (const d of covered) snapshots[String(d.index)] = await this.store.snapshotPageBlob(replicaBlobName(machine.id, d.index));
    const doc: PointDocument = {
      recoveryPointId: id,
      machineId: machine.id,
      time: now.toISOString(),
      sequence: spec.sequence,
      type: spec.type,
      tagName: spec.tagName ?? "",
      consistencyGroup: spec.consistencyGroup ?? "",
      snapshots,
      disksCovered: covered.length,
      disksTotal: disks.length,
      ...(spec.metadataMode ? { metadataMode: true } : {}),
      ...(spec.base ? { base: true } : {}),
    };
    await this.store.putObject(pointObjectName(machine.id, id), Buffer.from(JSON.stringify(doc, null, 2)));
    return { doc, created: true };
  }

  async read(machineId: string, pointId: string): Promise<PointDocument | undefined> {
    try {
      return JSON.parse((await this.store.getObject(pointObjectName(machineId, pointId))).toString("utf8")) as PointDocument;
    } catch (err) {
      if (isStorageNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Oldest (lowest sequence) first. */
  async list(machineId: string): Promise<PointDocument[]> {
    const docs: PointDocument[] = [];
    for (const info of await this.store.listObjects(pointsPrefix(machineId))) {
      if (!info.name.endsWith(".json")) continue;
      try {
        docs.push(JSON.parse((await this.store.getObject(info.name)).toString("utf8")) as PointDocument);
      } catch (err) {
        if (!isStorageNotFound(err)) throw err; // deleted meanwhile
      }
    }
    return docs.sort((a, b) => a.sequence - b.sequence || a.time.localeCompare(b.time));
  }

  /** Snapshots first, description last: a half-removed point is still listed and removed again. */
  async remove(doc: PointDocument): Promise<void> {
    for (const [index, snapshot] of Object.entries(doc.snapshots)) {
      try {
        await this.store.deleteSnapshot(replicaBlobName(doc.machineId, Number(index)), snapshot);
      } catch (err) {
        if (!isStorageNotFound(err)) throw err;
      }
    }
    await this.store.deleteObject(pointObjectName(doc.machineId, doc.recoveryPointId));
  }
}

export function toRecoveryPoint(doc: PointDocument): RecoveryPoint {
  return {
    recoveryPointId: doc.recoveryPointId,
    machineId: doc.machineId,
    time: new Date(doc.time),
    sequence: doc.sequence,
    type: doc.type === "app-consistent" ? RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT : RecoveryPointType.RECOVERY_POINT_TYPE_CRASH_CONSISTENT,
    tagName: doc.tagName,
    disksCovered: doc.disksCovered,
    disksTotal: doc.disksTotal,
    processed: true,
    consistencyGroup: doc.consistencyGroup,
    metadataMode: doc.metadataMode === true,
    direction: ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE,
  };
}
