import { replicaBlobName } from "../storage-layout/index.js";
import { ErrorCode, SrlabError } from "../errors/index.js";
import { type Logger, silentLogger } from "../logger.js";
import { applyRecords, blobPageTarget, PAGE_SIZE } from "../replica/index.js";
import { type BlobStore, isStorageNotFound } from "../storage/index.js";
import { WriteKind, type WriteRecord } from "../../proto/index.js";
import { deletePointDocument, listPointDocuments, type RecoveryPointDoc } from "./point-document.js";
import type { RecoveryTarget, ResolvedTarget } from "./recovery-target.js";
import { pointIdList, type RecoverableRange, rangeOf, resolveTarget, uploadedSequenceOf } from "./resolve-target.js";
import { readRetentionRecord } from "./retention-record.js";
import { replayRange } from "./replay.js";
import { listSegments, segmentRefOf } from "./segment-catalog.js";
import { readSegments } from "./segment-reader.js";

export interface RecoveryEngineOptions {
  store: BlobStore;
  segmentKeys: (keyId: string) => Buffer | undefined;
  logger?: Logger;
  /** Payload bytes replayed per applyRecords call (default 32 MiB). */
  replayBatchBytes?: number;
}

export interface MaterializeDisk {
  index: number;
  sizeBytes: number;
}

export interface MaterializeProgress {
  phase: "copy" | "replay";
  done: number;
  total: number;
}

export interface MaterializeResult {
  disks: Array<{ index: number; blob: string }>;
  /** Disks that did not exist yet at the target (added later): no blob was made for them. */
  omittedDisks: number[];
  replayedRecords: number;
  /** Written bytes copied from the base point's snapshots. */
  bytesCopied: number;
}

function pageAligned(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/**
 * Failover from storage alone (so it works while the process server is down): a recovery target is
 * resolved to a base point plus a run of log segments, and materialized by copying the point's
 * snapshots and replaying the segments on top.
 */
export class RecoveryEngine {
  private readonly store: BlobStore;
  private readonly segmentKeys: (keyId: string) => Buffer | undefined;
  private readonly logger: Logger;
  private readonly batchBytes?: number;

  constructor(opts: RecoveryEngineOptions) {
    this.store = opts.store;
    this.segmentKeys = opts.segmentKeys;
    this.logger = opts.logger ?? silentLogger();
    this.batchBytes = opts.replayBatchBytes;
  }

  /** Oldest (lowest sequence) first. */
  listPoints(machineId: string): Promise<RecoveryPointDoc[]> {
    return listPointDocuments(this.store, machineId, this.logger);
  }

  /** The last sequence recoverable from storage: the end of the unbroken run of segments after the newest point. */
  async uploadedSequence(machineId: string): Promise<number> {
    const [points, segments] = await Promise.all([this.listPoints(machineId), listSegments(this.store, machineId)]);
    return uploadedSequenceOf(points, segments);
  }

  /** What `--seq` and `--at` can reach now: from the oldest kept point to the last write in storage. */
  async range(machineId: string): Promise<RecoverableRange> {
    const [points, segments, pruned] = await Promise.all([
      this.listPoints(machineId),
      listSegments(this.store, machineId),
      readRetentionRecord(this.store, machineId),
    ]);
    return rangeOf(points, uploadedSequenceOf(points, segments), pruned);
  }

  async resolve(machineId: string, target: RecoveryTarget): Promise<ResolvedTarget> {
    const [points, segments, pruned] = await Promise.all([
      this.listPoints(machineId),
      listSegments(this.store, machineId),
      readRetentionRecord(this.store, machineId),
    ]);
    return resolveTarget(
      {
        machineId,
        points,
        segments,
        pruned,
        readRecords: (refs) => readSegments({ store: this.store, segmentKeys: this.segmentKeys, machineId }, refs),
        logger: this.logger,
      },
      target,
    );
  }

  /**
   * Copies the base point's snapshots to the target blobs and replays the segments on top. Disks
   * the base does not cover (added after it) get an empty blob only once replay meets their first
   * write; a disk with no write up to the target did not exist then and is left out.
   */
  async materialize(
    machineId: string,
    disks: MaterializeDisk[],
    resolved: ResolvedTarget,
    targetBlob: (diskIndex: number) => string,
    onProgress?: (p: MaterializeProgress) => void,
  ): Promise<MaterializeResult> {
    const { base } = resolved;
    for (const d of disks) {
      if (!Number.isSafeInteger(d.index) || d.index < 0 || !Number.isSafeInteger(d.sizeBytes) || d.sizeBytes <= 0) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${d.index} of machine ${machineId}: size ${d.sizeBytes} is not a positive integer`);
      }
      // Targets are deleted before the copy: never let that be the replica itself.
      if (targetBlob(d.index) === replicaBlobName(machineId, d.index)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${d.index}: the failover target must not be the replica blob ${targetBlob(d.index)}`);
      }
    }
    const sizes = new Map<number, number>(); // disk index -> page-blob size, once its target blob exists
    const copied = disks.filter((d) => base.snapshots[String(d.index)] !== undefined);
    const pendingEmpty = new Map(disks.filter((d) => !copied.includes(d)).map((d) => [d.index, d]));

    // Copy phase. Totals first (written ranges only), so progress is over all disks.
    const totals = await Promise.all(
      copied.map(async (d) => {
        const ranges = await this.snapshotCall(machineId, base, d.index, () =>
          this.store.getPageRanges(replicaBlobName(machineId, d.index), base.snapshots[String(d.index)]),
        );
        return ranges.reduce((n, r) => n + r.length, 0);
      }),
    );
    const total = totals.reduce((a, b) => a + b, 0);
    const done = copied.map(() => 0);
    const report = () => onProgress?.({ phase: "copy", done: done.reduce((a, b) => a + b, 0), total });
    report();
    await Promise.all(
      copied.map(async (d, i) => {
        const blob = targetBlob(d.index);
        await this.store.deletePageBlob(blob);
        await this.snapshotCall(machineId, base, d.index, () =>
          this.store.copyPageBlob(replicaBlobName(machineId, d.index), blob, {
            snapshot: base.snapshots[String(d.index)],
            onProgress: (n) => {
              done[i] = n;
              report();
            },
          }),
        );
        done[i] = totals[i]!;
        const size = (await this.store.pageBlobSize(blob)) ?? pageAligned(d.sizeBytes);
        if (size !== pageAligned(d.sizeBytes)) {
          this.logger.warn("snapshot size differs from the disk size; keeping the snapshot's", { machineId, disk: d.index, snapshotBytes: size, diskBytes: d.sizeBytes });
        }
        sizes.set(d.index, size);
      }),
    );
    report();
    // A blob left by an earlier materialization (change recovery point) must not outlive its disk.
    for (const d of pendingEmpty.values()) await this.store.deletePageBlob(targetBlob(d.index));
    // A disk the base does not cover was added after it: it is built from empty by replay, and
    // belongs to the failover only if its copy completed (its BASE record) by the target.
    const completed = new Set<number>();

    // Replay phase.
    let replayedRecords = 0;
    if (resolved.replaySegments.length > 0) {
      const refs = resolved.replaySegments.map((name) => {
        const ref = segmentRefOf(name);
        if (!ref) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `"${name}" is not a log segment name`);
        return ref;
      });
      const unknownDisks = new Set<number>();
      onProgress?.({ phase: "replay", done: 0, total: refs.length });
      const result = await replayRange({
        store: this.store,
        segmentKeys: this.segmentKeys,
        machineId,
        segments: refs,
        after: base.sequence,
        upTo: resolved.sequence,
        batchBytes: this.batchBytes,
        onSegment: (n, t) => onProgress?.({ phase: "replay", done: n, total: t }),
        onMarker: (r) => {
          if (r.kind === WriteKind.WRITE_KIND_BASE) completed.add(r.diskIndex);
        },
        apply: async (records) => {
          const byDisk = new Map<number, WriteRecord[]>();
          for (const r of records) {
            const list = byDisk.get(r.diskIndex);
            if (list) list.push(r);
            else byDisk.set(r.diskIndex, [r]);
          }
          await Promise.all(
            [...byDisk].map(async ([index, recs]) => {
              const size = sizes.get(index) ?? (await this.createEmpty(pendingEmpty, sizes, index, targetBlob));
              if (size === undefined) {
                if (!unknownDisks.has(index)) this.logger.warn("replay skips writes to a disk that is not being failed over", { machineId, disk: index });
                unknownDisks.add(index);
                return;
              }
              await applyRecords(blobPageTarget(this.store, targetBlob(index)), recs, index, size);
            }),
          );
        },
      });
      replayedRecords = result.records;
    }

    // Built by replay but still mid-copy at the target: not a disk the machine had then.
    for (const index of [...sizes.keys()]) {
      if (copied.some((d) => d.index === index) || completed.has(index)) continue;
      await this.store.deletePageBlob(targetBlob(index));
      sizes.delete(index);
      pendingEmpty.set(index, disks.find((d) => d.index === index)!);
    }
    const omittedDisks = [...pendingEmpty.keys()].sort((a, b) => a - b);
    if (omittedDisks.length) {
      this.logger.info("disks added after the recovery target are left out", { machineId, sequence: resolved.sequence, disks: omittedDisks });
    }
    const made = [...sizes.keys()].sort((a, b) => a - b).map((index) => ({ index, blob: targetBlob(index) }));
    this.logger.info("recovery target materialized", { machineId, target: resolved.description, disks: made.length, replayedRecords, bytesCopied: total });
    return { disks: made, omittedDisks, replayedRecords, bytesCopied: total };
  }

  /** Deletes every point but `keepIds` (snapshots, then description): failover commit. Returns the deleted ids. */
  async deletePoints(machineId: string, keepIds: string[]): Promise<string[]> {
    const points = await this.listPoints(machineId);
    const unknown = keepIds.filter((id) => !points.some((p) => p.recoveryPointId === id));
    // A mistyped id must not turn "keep this one" into "delete them all".
    if (unknown.length) {
      throw new SrlabError(ErrorCode.NOT_FOUND, `recovery point(s) ${unknown.join(", ")} do not exist for machine ${machineId}; nothing deleted; valid ids: ${pointIdList(points)}`);
    }
    const deleted: string[] = [];
    for (const p of points) {
      if (keepIds.includes(p.recoveryPointId)) continue;
      await deletePointDocument(this.store, machineId, p);
      deleted.push(p.recoveryPointId);
    }
    this.logger.info("recovery points deleted", { machineId, deleted: deleted.length, kept: keepIds });
    return deleted;
  }

  // ---- helpers ----

  private async createEmpty(
    pending: Map<number, MaterializeDisk>,
    sizes: Map<number, number>,
    index: number,
    targetBlob: (diskIndex: number) => string,
  ): Promise<number | undefined> {
    const d = pending.get(index);
    if (!d) return undefined;
    pending.delete(index);
    const size = pageAligned(d.sizeBytes);
    await this.store.createPageBlob(targetBlob(index), size);
    sizes.set(index, size);
    return size;
  }

  /** A snapshot that vanished means the point was deleted after resolve. */
  private async snapshotCall<T>(machineId: string, base: RecoveryPointDoc, disk: number, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!isStorageNotFound(err)) throw err;
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        `the snapshot of disk ${disk} in recovery point ${base.recoveryPointId} of machine ${machineId} is gone (point deleted by retention or commit?); resolve the recovery target again`,
        { cause: err },
      );
    }
  }
}
