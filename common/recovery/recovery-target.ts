import type { RecoveryPointDoc } from "./point-document.js";

/**
 * What to fail over to. "Latest" applies everything received (uploaded) first, for the lowest
 * RPO; "latest processed" takes the newest point as it is, for the lowest RTO.
 */
export type RecoveryTarget =
  /** Everything uploaded to storage: the lowest RPO. */
  | { kind: "latest" }
  /** The newest recovery point as it is, no replay: the lowest RTO. */
  | { kind: "latest-processed" }
  | { kind: "latest-app-consistent" }
  | { kind: "point"; pointId: string }
  /** Any single write inside the retention window. */
  | { kind: "sequence"; sequence: number }
  /** The write stream up to the last write captured at or before `at`. */
  | { kind: "time"; at: Date };

/** A target pinned to storage: start from `base`'s snapshots, then replay `replaySegments` up to `sequence`. */
export interface ResolvedTarget {
  sequence: number;
  base: RecoveryPointDoc;
  /** Segment object names, in replay order; empty when the base point is the target. */
  replaySegments: string[];
  /** When the write at `sequence` was captured (the achieved RPO), when storage still tells. */
  lastWriteCapturedAtMs?: number;
  description: string;
}

export function describeTarget(target: RecoveryTarget): string {
  switch (target.kind) {
    case "point":
      return `point ${target.pointId}`;
    case "sequence":
      return `sequence ${target.sequence}`;
    case "time":
      return `time ${Number.isNaN(target.at?.getTime?.()) ? String(target.at) : target.at.toISOString()}`;
    default:
      return target.kind;
  }
}
