import type Database from "better-sqlite3";

export interface ReplicationGroup {
  name: string;
  /** Machine ids, in the order given. */
  machineIds: string[];
  createdAt: Date;
}

/** A committed multi-machine point: each member's tag was cut while every member held its writes. */
export interface GroupPoint {
  groupPointId: string;
  groupName: string;
  tagName: string;
  appConsistent: boolean;
  members: Array<{ machineId: string; sequence: number }>;
  /** Longest time any member held its writes for this point (ms). */
  holdMs: number;
  createdAt: Date;
}

interface GroupRow {
  name: string;
  machines_json: string;
  created_at: number;
}

interface GroupPointRow {
  group_point_id: string;
  group_name: string;
  tag_name: string;
  app_consistent: number;
  members_json: string;
  hold_ms: number;
  created_at: number;
}

const pointFromRow = (r: GroupPointRow): GroupPoint => ({
  groupPointId: r.group_point_id,
  groupName: r.group_name,
  tagName: r.tag_name,
  appConsistent: r.app_consistent === 1,
  members: JSON.parse(r.members_json),
  holdMs: r.hold_ms,
  createdAt: new Date(r.created_at),
});

export class GroupsTable {
  private readonly upsert;
  private readonly byName;
  private readonly all;
  private readonly remove;
  private readonly insertPoint;
  private readonly pointsOf;
  private readonly pointById;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO replication_groups (name, machines_json, created_at) VALUES (@name, @machines, @now)
       ON CONFLICT (name) DO UPDATE SET machines_json = excluded.machines_json`,
    );
    this.byName = db.prepare<[string], GroupRow>("SELECT * FROM replication_groups WHERE name = ?");
    this.all = db.prepare<[], GroupRow>("SELECT * FROM replication_groups ORDER BY name");
    this.remove = db.prepare<[string]>("DELETE FROM replication_groups WHERE name = ?");
    this.insertPoint = db.prepare(
      `INSERT INTO group_points (group_point_id, group_name, tag_name, app_consistent, members_json, hold_ms, created_at)
       VALUES (@id, @group, @tag, @app, @members, @holdMs, @now)`,
    );
    this.pointsOf = db.prepare<[string], GroupPointRow>("SELECT * FROM group_points WHERE group_name = ? ORDER BY created_at, rowid");
    this.pointById = db.prepare<[string], GroupPointRow>("SELECT * FROM group_points WHERE group_point_id = ?");
  }

  put(name: string, machineIds: string[]): ReplicationGroup {
    this.upsert.run({ name, machines: JSON.stringify(machineIds), now: Date.now() });
    return this.get(name)!;
  }

  get(name: string): ReplicationGroup | undefined {
    const r = this.byName.get(name);
    return r && { name: r.name, machineIds: JSON.parse(r.machines_json), createdAt: new Date(r.created_at) };
  }

  list(): ReplicationGroup[] {
    return this.all.all().map((r) => ({ name: r.name, machineIds: JSON.parse(r.machines_json), createdAt: new Date(r.created_at) }));
  }

  delete(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }

  addPoint(p: GroupPoint): void {
    this.insertPoint.run({
      id: p.groupPointId,
      group: p.groupName,
      tag: p.tagName,
      app: p.appConsistent ? 1 : 0,
      members: JSON.stringify(p.members),
      holdMs: p.holdMs,
      now: p.createdAt.getTime(),
    });
  }

  /** Oldest first. */
  points(groupName: string): GroupPoint[] {
    return this.pointsOf.all(groupName).map(pointFromRow);
  }

  point(id: string): GroupPoint | undefined {
    const r = this.pointById.get(id);
    return r && pointFromRow(r);
  }
}
