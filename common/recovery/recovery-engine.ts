import { replicaBlobName } from "../storage-layout/index.js";
import { ErrorCode, SrlabError } from "../errors/index.js";
import { type Logger, silentLogger } from "../logger.js";
import { applyRecords, blobPageTarget, PAGE_SIZE } from "../replica/index.js";
import { type BlobStore, isStorageNotFound } from "../storage/index.js";
import { WriteKind, type WriteRecord } from "../../proto/index.js";
import { deletePointDocument, listPointDocuments, type RecoveryPointDoc } from "./point-document.js";
import { readRetentionRecord, type RetentionRecord } from "./retention-record.js";
import { type ResolvedTarget, type RecoveryTarget, describeTarget } from "./recovery-target.js";
import { replayRange } from "./replay.js";
import { coverRange, listSegments, runEnd, type SegmentRef, segmentHolding, segmentRefOf } from "./segment-catalog.js";
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

/** Lists at most this many point ids in an error message. */
const MAX_IDS_IN_MESSAGE = 20;

function pageAligned(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

function pointLabel(p: RecoveryPointDoc): string {
  return `${p.recoveryPointId} (${p.type}, sequence ${p.sequence}, ${p.time})`;
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
    return this.uploadedFrom(points, segments);
  }

  private uploadedFrom(points: RecoveryPointDoc[], segments: SegmentRef[]): number {
    const newest = points.at(-1);
    // Segments past a hole are unreachable from any point; with no point, from the oldest segment on.
    if (newest) return runEnd(segments, newest.sequence);
    return segments.length ? runEnd(segments, segments[0]!.firstSequence - 1) : 0;
  }

  /** What `--seq` and `--at` can reach now: from the oldest kept point to the last write in storage. */
  async range(machineId: string): Promise<RecoverableRange> {
    const [points, segments, pruned] = await Promise.all([
      this.listPoints(machineId),
      listSegments(this.store, machineId),
      readRetentionRecord(this.store, machineId),
    ]);
    return rangeOf(points, this.uploadedFrom(points, segments), pruned);
  }

  async resolve(machineId: string, target: RecoveryTarget): Promise<ResolvedTarget> {
    const [points, segments, pruned] = await Promise.all([
      this.listPoints(machineId),
      listSegments(this.store, machineId),
      readRetentionRecord(this.store, machineId),
    ]);
    if (points.length === 0) {
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        `machine ${machineId} has no recovery point yet: the first one (the base) is taken when initial replication finishes; wait for protection to complete`,
      );
    }
    const uploaded = this.uploadedFrom(points, segments);
    const range = rangeOf(points, uploaded, pruned);
    const newest = points.at(-1)!;
    const oldest = points[0]!;
    const what = describeTarget(target);

    switch (target.kind) {
      case "latest-processed":
        return this.atPoint(machineId, newest, segments, `latest processed: point ${pointLabel(newest)}`);
      case "latest-app-consistent": {
        const app = points.filter((p) => p.type === "app-consistent").at(-1);
        if (!app) {
          throw new SrlabError(
            ErrorCode.NOT_FOUND,
            `machine ${machineId} has no app-consistent recovery point (${points.length} crash-consistent ones exist): ` +
              `choose latest-processed, latest, or a point id, or wait for the next app-consistent point`,
          );
        }
        return this.atPoint(machineId, app, segments, `latest app-consistent: point ${pointLabel(app)}`);
      }
      case "point": {
        const p = points.find((x) => x.recoveryPointId === target.pointId);
        if (!p) {
          throw new SrlabError(ErrorCode.NOT_FOUND, `recovery point "${target.pointId}" does not exist for machine ${machineId}; valid ids: ${this.idList(points)}`);
        }
        return this.atPoint(machineId, p, segments, `point ${pointLabel(p)}`);
      }
      case "latest":
        this.warnUnreachable(machineId, segments, uploaded);
        return this.withReplay(machineId, points, segments, uploaded, undefined, `latest: sequence ${uploaded}`);
      case "sequence": {
        const n = target.sequence;
        if (!Number.isSafeInteger(n) || n < 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `sequence must be a non-negative integer, got ${n}`);
        if (n < oldest.sequence) throw new SrlabError(ErrorCode.OUT_OF_RANGE, `sequence ${n} ${whyBefore(range, oldest)}; ${describeRange(range)}`);
        if (n > uploaded) {
          throw new SrlabError(ErrorCode.OUT_OF_RANGE, `sequence ${n} is not in storage: the last uploaded sequence is ${uploaded}; ${describeRange(range)}`);
        }
        return this.withReplay(machineId, points, segments, n, undefined, `sequence ${n}`);
      }
      case "time": {
        const at = target.at;
        if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${what}: not a valid time`);
        const found = await this.scanToTime(machineId, points, segments, at.getTime(), range);
        return this.withReplay(machineId, points, segments, found.sequence, found.capturedAtMs, `time ${at.toISOString()}: sequence ${found.sequence}`);
      }
      default:
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `unknown recovery target kind ${JSON.stringify((target as { kind?: unknown }).kind)}`);
    }
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
      throw new SrlabError(ErrorCode.NOT_FOUND, `recovery point(s) ${unknown.join(", ")} do not exist for machine ${machineId}; nothing deleted; valid ids: ${this.idList(points)}`);
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

  private idList(all: RecoveryPointDoc[]): string {
    // The empty-disk origin has no id to offer.
    const points = all.filter((p) => p.recoveryPointId);
    if (points.length === 0) return "(none)";
    const shown = points.slice(-MAX_IDS_IN_MESSAGE).map((p) => p.recoveryPointId);
    const more = points.length - shown.length;
    return `${shown.join(", ")}${more > 0 ? ` (and ${more} older)` : ""}`;
  }

  private warnUnreachable(machineId: string, segments: SegmentRef[], uploaded: number): void {
    const beyond = segments.find((s) => s.firstSequence > uploaded + 1);
    if (beyond) {
      this.logger.warn("log segments past a hole cannot be recovered; latest stops before the hole", {
        machineId,
        missingFrom: uploaded + 1,
        missingTo: beyond.firstSequence - 1,
      });
    }
  }

  /** A point as it is, no replay. */
  private async atPoint(machineId: string, p: RecoveryPointDoc, segments: SegmentRef[], description: string): Promise<ResolvedTarget> {
    const capturedAt = await this.capturedAtOf(machineId, segments, p.sequence);
    return { sequence: p.sequence, base: p, replaySegments: [], lastWriteCapturedAtMs: capturedAt ?? Date.parse(p.time), description };
  }

  /** Newest point at or before `sequence`, then the segments covering the rest. */
  private async withReplay(
    machineId: string,
    points: RecoveryPointDoc[],
    segments: SegmentRef[],
    sequence: number,
    knownCapturedAt: number | undefined,
    label: string,
  ): Promise<ResolvedTarget> {
    const base = points.filter((p) => p.sequence <= sequence).at(-1);
    if (!base) {
      throw new SrlabError(ErrorCode.OUT_OF_RANGE, `${label} is older than the oldest retained recovery point ${pointLabel(points[0]!)}`);
    }
    if (base.sequence === sequence) return this.atPoint(machineId, base, segments, `${label}: point ${pointLabel(base)}`);
    const cover = coverRange(segments, base.sequence, sequence);
    if (!cover.ok) {
      throw new SrlabError(
        ErrorCode.OUT_OF_RANGE,
        `${label}: segments for sequences ${cover.missingFrom}..${cover.missingTo} are no longer in storage, so it cannot be rebuilt from point ${base.recoveryPointId} (sequence ${base.sequence}); ` +
          `choose a sequence up to ${cover.end} or a recovery point (valid ids: ${this.idList(points)})`,
      );
    }
    const capturedAt = knownCapturedAt ?? (await this.capturedAtOf(machineId, segments, sequence));
    return {
      sequence,
      base,
      replaySegments: cover.segments.map((s) => s.name),
      lastWriteCapturedAtMs: capturedAt,
      description: `${label}: point ${pointLabel(base)} + ${sequence - base.sequence} writes from ${cover.segments.length} log segment(s)`,
    };
  }

  /** capturedAtMs of the record at `sequence`, from the segment holding it (undefined when gone). */
  private async capturedAtOf(machineId: string, segments: SegmentRef[], sequence: number): Promise<number | undefined> {
    const ref = segmentHolding(segments, sequence);
    if (!ref) return undefined;
    try {
      for await (const { records } of readSegments({ store: this.store, segmentKeys: this.segmentKeys, machineId }, [ref])) {
        return records.find((r) => r.sequence === sequence)?.capturedAtMs;
      }
    } catch (err) {
      // Only the RPO figure depends on it; the recovery itself does not.
      this.logger.warn("cannot read the capture time of a write", { machineId, sequence, error: (err as Error).message });
    }
    return undefined;
  }

  /**
   * The write stream up to (not including) the first write captured after `atMs`, starting from the
   * newest point taken at or before it (every write in a point was captured before the point).
   */
  private async scanToTime(
    machineId: string,
    points: RecoveryPointDoc[],
    segments: SegmentRef[],
    atMs: number,
    range: RecoverableRange,
  ): Promise<{ sequence: number; capturedAtMs?: number }> {
    const start = points.filter((p) => Date.parse(p.time) <= atMs).at(-1);
    const at = new Date(atMs).toISOString();
    if (!start) throw new SrlabError(ErrorCode.OUT_OF_RANGE, `time ${at} ${whyBefore(range, points[0]!)}; ${describeRange(range)}`);
    // Up to the last segment in storage, so a hole in the log is noticed rather than stopped at.
    const lastStored = segments.reduce((m, x) => Math.max(m, x.lastSequence), start.sequence);
    const cover = coverRange(segments, start.sequence, lastStored);
    let sequence = start.sequence;
    let capturedAtMs: number | undefined;
    const reader = readSegments({ store: this.store, segmentKeys: this.segmentKeys, machineId }, cover.segments);
    scan: for await (const { records } of reader) {
      for (const r of records) {
        if (r.sequence <= sequence) continue;
        if (r.capturedAtMs > atMs) break scan;
        sequence = r.sequence;
        capturedAtMs = r.capturedAtMs;
      }
    }
    if (!cover.ok && sequence === cover.end) {
      // Everything before the hole is older than `at`: the writes in the hole may be too.
      throw new SrlabError(
        ErrorCode.OUT_OF_RANGE,
        `time ${at}: segments for sequences ${cover.missingFrom}..${cover.missingTo} are no longer in storage; the newest write reachable before them is sequence ${sequence}`,
      );
    }
    return { sequence, capturedAtMs };
  }
}

/** What `--seq`/`--at` can reach, and why nothing before it can be. */
export interface RecoverableRange {
  /** The oldest point kept; absent while initial replication has not finished. */
  oldest?: { pointId: string; sequence: number; time: string; base: boolean };
  /** The last write in storage reachable from the points. */
  lastSequence: number;
  /** Set once retention has removed points: writes up to its sequence are gone. */
  pruned?: RetentionRecord;
}

function rangeOf(points: RecoveryPointDoc[], uploaded: number, pruned: RetentionRecord | undefined): RecoverableRange {
  const oldest = points[0];
  return {
    oldest: oldest && { pointId: oldest.recoveryPointId, sequence: oldest.sequence, time: oldest.time, base: oldest.base === true },
    lastSequence: uploaded,
    pruned: pruned && oldest && pruned.prunedThroughSequence < oldest.sequence ? pruned : undefined,
  };
}

export function describeRange(range: RecoverableRange): string {
  if (!range.oldest) return "nothing is recoverable yet (initial replication has not finished)";
  return `the recoverable range is sequence ${range.oldest.sequence}..${range.lastSequence} (from ${range.oldest.time})`;
}

/** The true reason a target lies before the oldest point: retention removed it, or it precedes the base. */
function whyBefore(range: RecoverableRange, oldest: RecoveryPointDoc): string {
  if (range.pruned) {
    return (
      `was pruned by retention at ${range.pruned.prunedAt} (points older than ${range.pruned.retentionSeconds} s are removed, ` +
      `and the writes before the oldest kept point ${pointLabel(oldest)} with them)`
    );
  }
  return (
    `is before the base: the first recovery point, ${pointLabel(oldest)}, was taken when initial replication ` +
    `finished, and writes before it were part of the initial copy`
  );
}
