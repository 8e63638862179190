import { ErrorCode, SrlabError } from "../errors/index.js";
import type { Logger } from "../logger.js";
import type { WriteRecord } from "../../proto/index.js";
import type { RecoveryPointDoc } from "./point-document.js";
import type { RetentionRecord } from "./retention-record.js";
import { describeTarget, type RecoveryTarget, type ResolvedTarget } from "./recovery-target.js";
import { coverRange, runEnd, type SegmentRef, segmentHolding } from "./segment-catalog.js";

// Resolving a recovery target is decided from the catalogue alone (point documents and segment
// names) plus, for capture times, the records of a few segments. No storage here: the caller
// lists the catalogue and supplies the record reader, so every rule is testable in memory.

/** What resolution works from. */
export interface TargetCatalog {
  machineId: string;
  /** Point documents as stored, oldest (lowest sequence) first. */
  points: RecoveryPointDoc[];
  /** Segment names by first sequence (segment-catalog's listSegments order). */
  segments: SegmentRef[];
  /** The records of the given segments, in order (capture times; the time target scans them). */
  readRecords(segments: SegmentRef[]): AsyncIterable<{ records: WriteRecord[] }>;
  logger: Logger;
  /** The last retention prune, when retention has removed points. */
  pruned?: RetentionRecord;
}

/** Lists at most this many point ids in an error message. */
const MAX_IDS_IN_MESSAGE = 20;

export function pointLabel(p: RecoveryPointDoc): string {
  return `${p.recoveryPointId} (${p.type}, sequence ${p.sequence}, ${p.time})`;
}

/** Point ids for an error message: the newest few, with a count of the rest. */
export function pointIdList(all: RecoveryPointDoc[]): string {
  // The empty-disk origin has no id to offer.
  const points = all.filter((p) => p.recoveryPointId);
  if (points.length === 0) return "(none)";
  const shown = points.slice(-MAX_IDS_IN_MESSAGE).map((p) => p.recoveryPointId);
  const more = points.length - shown.length;
  return `${shown.join(", ")}${more > 0 ? ` (and ${more} older)` : ""}`;
}

/** The last recoverable sequence: the end of the unbroken run of segments after the newest point. */
export function uploadedSequenceOf(points: RecoveryPointDoc[], segments: SegmentRef[]): number {
  const newest = points.at(-1);
  // Segments past a hole are unreachable from any point; with no point, from the oldest segment on.
  if (newest) return runEnd(segments, newest.sequence);
  return segments.length ? runEnd(segments, segments[0]!.firstSequence - 1) : 0;
}

/** The empty disks every machine starts from: sequence 0, no snapshots. */
export function originPoint(machineId: string): RecoveryPointDoc {
  return {
    recoveryPointId: "",
    machineId,
    time: new Date(0).toISOString(),
    sequence: 0,
    type: "crash-consistent",
    tagName: "",
    consistencyGroup: "",
    snapshots: {},
    disksCovered: 0,
    disksTotal: 0,
  };
}

/** Pins `target` to a base point plus the segments to replay on top of it. */
export async function resolveTarget(catalog: TargetCatalog, target: RecoveryTarget): Promise<ResolvedTarget> {
  const { machineId, points, segments } = catalog;
  if (points.length === 0) {
    throw new SrlabError(
      ErrorCode.NOT_FOUND,
      `machine ${machineId} has no recovery point yet: the first one (the base) is taken when initial replication finishes; wait for protection to complete`,
    );
  }
  const uploaded = uploadedSequenceOf(points, segments);
  const range = rangeOf(points, uploaded, catalog.pruned);
  const newest = points.at(-1)!;
  const oldest = points[0]!;
  const what = describeTarget(target);

  switch (target.kind) {
    case "latest-processed":
      return atPoint(catalog, newest, `latest processed: point ${pointLabel(newest)}`);
    case "latest-app-consistent": {
      const app = points.filter((p) => p.type === "app-consistent").at(-1);
      if (!app) {
        throw new SrlabError(
          ErrorCode.NOT_FOUND,
          `machine ${machineId} has no app-consistent recovery point (${points.length} crash-consistent ones exist): ` +
            `choose latest-processed, latest, or a point id, or wait for the next app-consistent point`,
        );
      }
      return atPoint(catalog, app, `latest app-consistent: point ${pointLabel(app)}`);
    }
    case "point": {
      const p = points.find((x) => x.recoveryPointId === target.pointId);
      if (!p) {
        throw new SrlabError(ErrorCode.NOT_FOUND, `recovery point "${target.pointId}" does not exist for machine ${machineId}; valid ids: ${pointIdList(points)}`);
      }
      return atPoint(catalog, p, `point ${pointLabel(p)}`);
    }
    case "latest":
      warnUnreachable(catalog, uploaded);
      return withReplay(catalog, points, uploaded, undefined, `latest: sequence ${uploaded}`);
    case "sequence": {
      const n = target.sequence;
      if (!Number.isSafeInteger(n) || n < 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `sequence must be a non-negative integer, got ${n}`);
      if (n < oldest.sequence) throw new SrlabError(ErrorCode.OUT_OF_RANGE, `sequence ${n} ${whyBefore(range, oldest)}; ${describeRange(range)}`);
      if (n > uploaded) {
        throw new SrlabError(ErrorCode.OUT_OF_RANGE, `sequence ${n} is not in storage: the last uploaded sequence is ${uploaded}; ${describeRange(range)}`);
      }
      return withReplay(catalog, points, n, undefined, `sequence ${n}`);
    }
    case "time": {
      const at = target.at;
      if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `${what}: not a valid time`);
      const found = await scanToTime(catalog, points, at.getTime(), range);
      return withReplay(catalog, points, found.sequence, found.capturedAtMs, `time ${at.toISOString()}: sequence ${found.sequence}`);
    }
    default:
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `unknown recovery target kind ${JSON.stringify((target as { kind?: unknown }).kind)}`);
  }
}

function warnUnreachable(catalog: TargetCatalog, uploaded: number): void {
  const beyond = catalog.segments.find((s) => s.firstSequence > uploaded + 1);
  if (beyond) {
    catalog.logger.warn("log segments past a hole cannot be recovered; latest stops before the hole", {
      machineId: catalog.machineId,
      missingFrom: uploaded + 1,
      missingTo: beyond.firstSequence - 1,
    });
  }
}

/** A point as it is, no replay. */
async function atPoint(catalog: TargetCatalog, p: RecoveryPointDoc, description: string): Promise<ResolvedTarget> {
  const capturedAt = await capturedAtOf(catalog, p.sequence);
  return { sequence: p.sequence, base: p, replaySegments: [], lastWriteCapturedAtMs: capturedAt ?? Date.parse(p.time), description };
}

/** Newest point at or before `sequence`, then the segments covering the rest. */
async function withReplay(
  catalog: TargetCatalog,
  points: RecoveryPointDoc[],
  sequence: number,
  knownCapturedAt: number | undefined,
  label: string,
): Promise<ResolvedTarget> {
  const base = points.filter((p) => p.sequence <= sequence).at(-1);
  if (!base) {
    throw new SrlabError(ErrorCode.OUT_OF_RANGE, `${label} is older than the oldest retained recovery point ${pointLabel(points[0]!)}`);
  }
  if (base.sequence === sequence) return atPoint(catalog, base, `${label}: point ${pointLabel(base)}`);
  const cover = coverRange(catalog.segments, base.sequence, sequence);
  if (!cover.ok) {
    throw new SrlabError(
      ErrorCode.OUT_OF_RANGE,
      `${label}: segments for sequences ${cover.missingFrom}..${cover.missingTo} are no longer in storage, so it cannot be rebuilt from point ${base.recoveryPointId} (sequence ${base.sequence}); ` +
        `choose a sequence up to ${cover.end} or a recovery point (valid ids: ${pointIdList(points)})`,
    );
  }
  const capturedAt = knownCapturedAt ?? (await capturedAtOf(catalog, sequence));
  return {
    sequence,
    base,
    replaySegments: cover.segments.map((s) => s.name),
    lastWriteCapturedAtMs: capturedAt,
    description: `${label}: point ${pointLabel(base)} + ${sequence - base.sequence} writes from ${cover.segments.length} log segment(s)`,
  };
}

/** capturedAtMs of the record at `sequence`, from the segment holding it (undefined when gone). */
async function capturedAtOf(catalog: TargetCatalog, sequence: number): Promise<number | undefined> {
  const ref = segmentHolding(catalog.segments, sequence);
  if (!ref) return undefined;
  try {
    for await (const { records } of catalog.readRecords([ref])) {
      return records.find((r) => r.sequence === sequence)?.capturedAtMs;
    }
  } catch (err) {
    // Only the RPO figure depends on it; the recovery itself does not.
    catalog.logger.warn("cannot read the capture time of a write", { machineId: catalog.machineId, sequence, error: (err as Error).message });
  }
  return undefined;
}

/**
 * The write stream up to (not including) the first write captured after `atMs`, starting from the
 * newest point taken at or before it (every write in a point was captured before the point).
 */
async function scanToTime(
  catalog: TargetCatalog,
  points: RecoveryPointDoc[],
  atMs: number,
  range: RecoverableRange,
): Promise<{ sequence: number; capturedAtMs?: number }> {
  const { segments } = catalog;
  const start = points.filter((p) => Date.parse(p.time) <= atMs).at(-1);
  const at = new Date(atMs).toISOString();
  if (!start) throw new SrlabError(ErrorCode.OUT_OF_RANGE, `time ${at} ${whyBefore(range, points[0]!)}; ${describeRange(range)}`);
  // Up to the last segment in storage, so a hole in the log is noticed rather than stopped at.
  const lastStored = segments.reduce((m, x) => Math.max(m, x.lastSequence), start.sequence);
  const cover = coverRange(segments, start.sequence, lastStored);
  let sequence = start.sequence;
  let capturedAtMs: number | undefined;
  scan: for await (const { records } of catalog.readRecords(cover.segments)) {
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

/** What `--seq`/`--at` can reach, and why nothing before it can be. */
export interface RecoverableRange {
  /** The oldest point kept; absent while initial replication has not finished. */
  oldest?: { pointId: string; sequence: number; time: string; base: boolean };
  /** The last write in storage reachable from the points. */
  lastSequence: number;
  /** Set once retention has removed points: writes up to its sequence are gone. */
  pruned?: RetentionRecord;
}

export function rangeOf(points: RecoveryPointDoc[], uploaded: number, pruned: RetentionRecord | undefined): RecoverableRange {
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
