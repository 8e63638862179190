import type { Logger } from "../../common/logger.js";
import { writeRetentionRecord } from "../../common/recovery/index.js";
import type { BlobStore } from "../../common/storage/index.js";
import type { PointDocument, PointStore } from "./point-store.js";
import { type LogLocation, logPrefix, parseSegmentObjectName } from "../../common/storage-layout/index.js";

export interface PruneResult {
  pointsRemoved: PointDocument[];
  segmentsRemoved: number;
}

/**
 * Drops points and log segments that fell out of the retention window. The newest point always
 * stays, and so does every segment after the oldest remaining point: recovering to any write
 * inside the window starts from a point and replays segments from there.
 */
export async function pruneExpired(opts: {
  machineId: string;
  processedSequence: number;
  retentionSeconds: number;
  store: BlobStore;
  points: PointStore;
  logger: Logger;
  now?: number;
}): Promise<PruneResult> {
  const { machineId, store, points, logger } = opts;
  const cutoff = (opts.now ?? Date.now()) - opts.retentionSeconds * 1000;
  const docs = await points.list(machineId);
  if (docs.length === 0) return { pointsRemoved: [], segmentsRemoved: 0 };
  const newest = docs[docs.length - 1]!;
  const expired = docs.filter((d) => d !== newest && Date.parse(d.time) < cutoff);
  const oldestKept = docs.find((d) => !expired.includes(d))!;
  if (expired.length) {
    // Written first: a failover asking for a removed write is told it was pruned, and when.
    await writeRetentionRecord(store, machineId, {
      prunedAt: new Date(opts.now ?? Date.now()).toISOString(),
      prunedThroughSequence: oldestKept.sequence - 1,
      retentionSeconds: opts.retentionSeconds,
    });
  }
  for (const d of expired) await points.remove(d);

  // Segments wholly at or before the oldest kept point (and applied) are not needed to reach any point.
  const limit = Math.min(oldestKept.sequence, opts.processedSequence);
  let segmentsRemoved = 0;
  for (const info of await store.listObjects(logPrefix(machineId))) {
    const parsed = parseSegmentObjectName(info.name);
    if (!parsed || parsed.lastSequence > limit || info.lastModified.getTime() >= cutoff) continue;
    await store.deleteObject(info.name);
    segmentsRemoved++;
  }
  if (expired.length || segmentsRemoved) {
    logger.info("retention pruned", { machineId, points: expired.length, segments: segmentsRemoved, oldestKeptSequence: oldestKept.sequence });
  }
  return { pointsRemoved: expired, segmentsRemoved };
}

/**
 * Failback segments have no points to anchor them: once the master target acknowledged them and
 * they fell out of the retention window they are no longer needed.
 */
export async function pruneAppliedLog(opts: {
  log: LogLocation;
  processedSequence: number;
  retentionSeconds: number;
  store: BlobStore;
  logger: Logger;
  now?: number;
}): Promise<number> {
  const cutoff = (opts.now ?? Date.now()) - opts.retentionSeconds * 1000;
  let removed = 0;
  for (const info of await opts.store.listObjects(opts.log.prefix)) {
    const parsed = opts.log.parse(info.name);
    if (!parsed || parsed.lastSequence > opts.processedSequence || info.lastModified.getTime() >= cutoff) continue;
    await opts.store.deleteObject(info.name);
    removed++;
  }
  if (removed) opts.logger.info("retention pruned applied failback segments", { prefix: opts.log.prefix, segments: removed });
  return removed;
}
