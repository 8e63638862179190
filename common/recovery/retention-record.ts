import { retentionObjectName } from "../storage-layout/index.js";
import { type BlobStore, isStorageNotFound } from "../storage/index.js";

/**
 * `machines/<id>/retention.json`, written by the process server each time retention removes
 * points: recovery uses it to tell "pruned by retention" from "before the base".
 */
export interface RetentionRecord {
  /** When the last prune ran that removed something (ISO). */
  prunedAt: string;
  /** Writes at or below this sequence are no longer recoverable one by one. */
  prunedThroughSequence: number;
  /** Points older than this many seconds were removed. */
  retentionSeconds: number;
}

export async function readRetentionRecord(store: BlobStore, machineId: string): Promise<RetentionRecord | undefined> {
  try {
    const doc = JSON.parse((await store.getObject(retentionObjectName(machineId))).toString("utf8")) as Partial<RetentionRecord>;
    if (typeof doc.prunedAt !== "string" || !Number.isSafeInteger(doc.prunedThroughSequence)) return undefined;
    return doc as RetentionRecord;
  } catch (err) {
    if (isStorageNotFound(err) || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export async function writeRetentionRecord(store: BlobStore, machineId: string, record: RetentionRecord): Promise<void> {
  await store.putObject(retentionObjectName(machineId), Buffer.from(JSON.stringify(record, null, 2)));
}
