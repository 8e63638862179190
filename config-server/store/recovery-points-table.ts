import type Database from "better-sqlite3";
import { type RecoveryPoint, RecoveryPointType } from "../../proto/index.js";
import { fromMillis, isEnumValue } from "./row-codec.js";
import { invalid } from "./store-error.js";

export interface RecoveryPointRow {
  recovery_point_id: string;
  machine_id: string;
  time: number;
  sequence: number;
  type: number;
  tag_name: string;
  disks_covered: number;
  disks_total: number;
  processed: number;
  consistency_group: string;
}

export function recoveryPointFromRow(r: RecoveryPointRow): RecoveryPoint {
  return {
    recoveryPointId: r.recovery_point_id,
    machineId: r.machine_id,
    time: fromMillis(r.time),
    sequence: r.sequence,
    type: r.type,
    tagName: r.tag_name,
    disksCovered: r.disks_covered,
    disksTotal: r.disks_total,
    processed: r.processed === 1,
    consistencyGroup: r.consistency_group,
  };
}

export class RecoveryPointsTable {
  private readonly byId;
  private readonly ofMachine;
  private readonly latestOfMachine;
  private readonly latestOfEachMachine;
  private readonly insert;
  private readonly raiseProcessed;
  private readonly markThrough;
  private readonly removeOne;
  private readonly olderThan;

  constructor(db: Database.Database) {
    this.byId = db.prepare<[string], RecoveryPointRow>(
      "SELECT * FROM recovery_points WHERE recovery_point_id = ?",
    );
    // Ties on sequence (two tags after the same write) fall back to time, then id.
    this.ofMachine = db.prepare<[string], RecoveryPointRow>(
      "SELECT * FROM recovery_points WHERE machine_id = ? ORDER BY sequence, time, recovery_point_id",
    );
    this.latestOfMachine = db.prepare<[string], RecoveryPointRow>(
      `SELECT * FROM recovery_points WHERE machine_id = ?
       ORDER BY sequence DESC, time DESC, recovery_point_id DESC LIMIT 1`,
    );
    // The same order as latestOfMachine, for every machine in one pass (status lists them all).
    this.latestOfEachMachine = db.prepare<[], RecoveryPointRow>(
      `SELECT * FROM (
         SELECT *, ROW_NUMBER() OVER (PARTITION BY machine_id ORDER BY sequence DESC, time DESC, recovery_point_id DESC) AS rank
         FROM recovery_points)
       WHERE rank = 1`,
    );
    this.insert = db.prepare(
      `INSERT INTO recovery_points (recovery_point_id, machine_id, time, sequence, type, tag_name,
         disks_covered, disks_total, processed, consistency_group)
       VALUES (@id, @machineId, @time, @sequence, @type, @tagName, @disksCovered, @disksTotal,
         @processed, @consistencyGroup)`,
    );
    this.raiseProcessed = db.prepare<[string]>(
      "UPDATE recovery_points SET processed = 1 WHERE recovery_point_id = ?",
    );
    this.markThrough = db.prepare<[string, number]>(
      "UPDATE recovery_points SET processed = 1 WHERE machine_id = ? AND sequence <= ? AND processed = 0",
    );
    this.removeOne = db.prepare<[string]>("DELETE FROM recovery_points WHERE recovery_point_id = ?");
    this.olderThan = db.prepare<[string, number], RecoveryPointRow>(
      "SELECT * FROM recovery_points WHERE machine_id = ? AND time < ? ORDER BY sequence, time",
    );
  }

  /**
   * Idempotent by id, since reporters retransmit: a repeat changes nothing except that a point
   * once reported processed stays processed.
   */
  add(rp: RecoveryPoint): RecoveryPoint {
    if (rp.recoveryPointId === "") throw invalid("recovery point id must not be empty");
    const existing = this.byId.get(rp.recoveryPointId);
    if (existing) {
      if (existing.machine_id !== rp.machineId) {
        throw invalid(
          `recovery point "${rp.recoveryPointId}" already belongs to machine ${existing.machine_id}, not ${rp.machineId}`,
        );
      }
      if (rp.processed && existing.processed === 0) this.raiseProcessed.run(rp.recoveryPointId);
      return this.get(rp.recoveryPointId) as RecoveryPoint;
    }
    if (!isEnumValue(RecoveryPointType, rp.type)) {
      throw invalid(`recovery point "${rp.recoveryPointId}": type ${rp.type} is not a known type`);
    }
    if (!Number.isInteger(rp.sequence) || rp.sequence < 0) {
      throw invalid(`recovery point "${rp.recoveryPointId}": sequence must be a non-negative integer`);
    }
    this.insert.run({
      id: rp.recoveryPointId,
      machineId: rp.machineId,
      time: (rp.time ?? new Date()).getTime(),
      sequence: rp.sequence,
      type: rp.type,
      tagName: rp.tagName,
      disksCovered: rp.disksCovered,
      disksTotal: rp.disksTotal,
      processed: rp.processed ? 1 : 0,
      consistencyGroup: rp.consistencyGroup,
    });
    return this.get(rp.recoveryPointId) as RecoveryPoint;
  }

  get(id: string): RecoveryPoint | undefined {
    const row = this.byId.get(id);
    return row ? recoveryPointFromRow(row) : undefined;
  }

  list(machineId: string): RecoveryPoint[] {
    return this.ofMachine.all(machineId).map(recoveryPointFromRow);
  }

  latest(machineId: string): RecoveryPoint | undefined {
    const row = this.latestOfMachine.get(machineId);
    return row ? recoveryPointFromRow(row) : undefined;
  }

  /** The newest point of every machine that has one, by machine id. */
  latestOfEach(): Map<string, RecoveryPoint> {
    return new Map(this.latestOfEachMachine.all().map((r) => [r.machine_id, recoveryPointFromRow(r)]));
  }

  markProcessed(machineId: string, throughSequence: number): number {
    return this.markThrough.run(machineId, throughSequence).changes;
  }

  /** Commit keeps only the chosen point(s); returns what was removed so blobs can follow. */
  deleteExcept(machineId: string, exceptIds: readonly string[]): RecoveryPoint[] {
    const keep = new Set(exceptIds);
    const removed = this.list(machineId).filter((rp) => !keep.has(rp.recoveryPointId));
    for (const rp of removed) this.removeOne.run(rp.recoveryPointId);
    return removed;
  }

  prune(machineId: string, olderThan: Date): RecoveryPoint[] {
    const removed = this.olderThan.all(machineId, olderThan.getTime()).map(recoveryPointFromRow);
    for (const rp of removed) this.removeOne.run(rp.recoveryPointId);
    return removed;
  }
}
