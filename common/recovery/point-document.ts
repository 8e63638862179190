import { pointObjectName, pointsPrefix, replicaBlobName } from "../storage-layout/index.js";
import type { Logger } from "../logger.js";
import { type BlobStore, isStorageNotFound } from "../storage/index.js";

/**
 * `machines/<id>/points/<pointId>.json`, as the process server writes it: a recovery point is a
 * snapshot of every replica disk that existed at `sequence`.
 */
export interface RecoveryPointDoc {
  recoveryPointId: string;
  machineId: string;
  /** ISO time the point was taken (process server clock). */
  time: string;
  sequence: number;
  type: "app-consistent" | "crash-consistent";
  tagName: string;
  consistencyGroup: string;
  /** Replica page-blob snapshot id per disk index. */
  snapshots: Record<string, string>;
  disksCovered: number;
  disksTotal: number;
  /** Writes up to the point were read from the agent's disk later (metadata capture mode). */
  metadataMode?: boolean;
  /** Taken where a disk's copy completed (end of initial replication, a resync, a disk added). */
  base?: boolean;
}

/** Checks the fields recovery relies on; anything else in the document is carried along. */
export function parsePointDocument(data: Buffer, name: string): RecoveryPointDoc {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString("utf8"));
  } catch (err) {
    throw new Error(`${name} is not JSON: ${(err as Error).message}`);
  }
  const d = doc as Partial<RecoveryPointDoc> | null;
  const problem =
    typeof d !== "object" || d === null
      ? "not an object"
      : typeof d.recoveryPointId !== "string" || d.recoveryPointId === ""
        ? "recoveryPointId missing"
        : !Number.isSafeInteger(d.sequence) || (d.sequence as number) < 0
          ? "sequence is not a non-negative integer"
          : d.type !== "app-consistent" && d.type !== "crash-consistent"
            ? `unknown type ${JSON.stringify(d.type)}`
            : typeof d.time !== "string" || Number.isNaN(Date.parse(d.time))
              ? "time is not an ISO date"
              : typeof d.snapshots !== "object" || d.snapshots === null
                ? "snapshots missing"
                : undefined;
  if (problem) throw new Error(`${name} is not a recovery point document: ${problem}`);
  return doc as RecoveryPointDoc;
}

/** A machine's points, oldest (lowest sequence) first; unreadable documents are logged and skipped. */
export async function listPointDocuments(store: BlobStore, machineId: string, logger?: Logger): Promise<RecoveryPointDoc[]> {
  const docs: RecoveryPointDoc[] = [];
  for (const info of await store.listObjects(pointsPrefix(machineId))) {
    if (!info.name.endsWith(".json")) continue;
    let data: Buffer;
    try {
      data = await store.getObject(info.name);
    } catch (err) {
      if (isStorageNotFound(err)) continue; // removed by retention meanwhile
      throw err;
    }
    try {
      docs.push(parsePointDocument(data, info.name));
    } catch (err) {
      // One damaged document must not block failover to the others.
      logger?.warn("skipping unreadable recovery point document", { machineId, name: info.name, error: (err as Error).message });
    }
  }
  return docs.sort((a, b) => a.sequence - b.sequence || a.time.localeCompare(b.time));
}

/** Snapshots first, description last: a half-removed point is still listed and can be removed again. */
export async function deletePointDocument(store: BlobStore, machineId: string, doc: RecoveryPointDoc): Promise<void> {
  for (const [index, snapshot] of Object.entries(doc.snapshots)) {
    try {
      await store.deleteSnapshot(replicaBlobName(machineId, Number(index)), snapshot);
    } catch (err) {
      if (!isStorageNotFound(err)) throw err;
    }
  }
  await store.deleteObject(pointObjectName(machineId, doc.recoveryPointId));
}
