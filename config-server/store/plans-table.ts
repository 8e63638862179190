import type Database from "better-sqlite3";

export interface StoredPlan {
  name: string;
  /** The YAML as applied. */
  source: string;
  /** The validated plan (see config-server/plans). */
  specJson: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface PlanRunRow {
  jobId: string;
  planName: string;
  operation: string;
  optionsJson: string;
  createdAt: Date;
}

export interface PlanSchedule {
  planName: string;
  cron: string;
  cycle: string;
  /** The rehearsal's options (network, workload, approval) as JSON. */
  optionsJson: string;
  createdAt: Date;
}

interface PlanRow {
  name: string;
  source: string;
  spec_json: string;
  created_at: number;
  updated_at: number;
}

interface RunRow {
  job_id: string;
  plan_name: string;
  operation: string;
  options_json: string;
  created_at: number;
}

const planFromRow = (r: PlanRow): StoredPlan => ({
  name: r.name,
  source: r.source,
  specJson: r.spec_json,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

const runFromRow = (r: RunRow): PlanRunRow => ({
  jobId: r.job_id,
  planName: r.plan_name,
  operation: r.operation,
  optionsJson: r.options_json,
  createdAt: new Date(r.created_at),
});

export class PlansTable {
  private readonly upsert;
  private readonly byName;
  private readonly all;
  private readonly remove;
  private readonly insertRun;
  private readonly runById;
  private readonly runsAll;
  private readonly runsOf;
  private readonly putSchedule;
  private readonly schedulesAll;
  private readonly removeSchedule;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO plans (name, source, spec_json, created_at, updated_at) VALUES (@name, @source, @spec, @now, @now)
       ON CONFLICT (name) DO UPDATE SET source = excluded.source, spec_json = excluded.spec_json, updated_at = excluded.updated_at`,
    );
    this.byName = db.prepare<[string], PlanRow>("SELECT * FROM plans WHERE name = ?");
    this.all = db.prepare<[], PlanRow>("SELECT * FROM plans ORDER BY name");
    this.remove = db.prepare<[string]>("DELETE FROM plans WHERE name = ?");
    this.insertRun = db.prepare(
      `INSERT INTO plan_runs (job_id, plan_name, operation, options_json, created_at) VALUES (@jobId, @plan, @op, @options, @now)`,
    );
    this.runById = db.prepare<[string], RunRow>("SELECT * FROM plan_runs WHERE job_id = ?");
    this.runsAll = db.prepare<[], RunRow>("SELECT * FROM plan_runs ORDER BY created_at DESC, rowid DESC");
    this.runsOf = db.prepare<[string], RunRow>("SELECT * FROM plan_runs WHERE plan_name = ? ORDER BY created_at DESC, rowid DESC");
    this.putSchedule = db.prepare(
      `INSERT INTO plan_schedules (plan_name, cron, cycle, options_json, created_at) VALUES (@plan, @cron, @cycle, @options, @now)
       ON CONFLICT (plan_name) DO UPDATE SET cron = excluded.cron, cycle = excluded.cycle, options_json = excluded.options_json`,
    );
    this.schedulesAll = db.prepare<[], { plan_name: string; cron: string; cycle: string; options_json: string; created_at: number }>(
      "SELECT * FROM plan_schedules ORDER BY plan_name",
    );
    this.removeSchedule = db.prepare<[string]>("DELETE FROM plan_schedules WHERE plan_name = ?");
  }

  put(name: string, source: string, specJson: string): StoredPlan {
    this.upsert.run({ name, source, spec: specJson, now: Date.now() });
    return this.get(name)!;
  }

  get(name: string): StoredPlan | undefined {
    const r = this.byName.get(name);
    return r && planFromRow(r);
  }

  list(): StoredPlan[] {
    return this.all.all().map(planFromRow);
  }

  delete(name: string): boolean {
    this.removeSchedule.run(name);
    return this.remove.run(name).changes > 0;
  }

  addRun(run: Omit<PlanRunRow, "createdAt">): void {
    this.insertRun.run({ jobId: run.jobId, plan: run.planName, op: run.operation, options: run.optionsJson, now: Date.now() });
  }

  run(jobId: string): PlanRunRow | undefined {
    const r = this.runById.get(jobId);
    return r && runFromRow(r);
  }

  /** Newest first. */
  runs(planName?: string): PlanRunRow[] {
    return (planName ? this.runsOf.all(planName) : this.runsAll.all()).map(runFromRow);
  }

  schedule(s: Omit<PlanSchedule, "createdAt">): void {
    this.putSchedule.run({ plan: s.planName, cron: s.cron, cycle: s.cycle, options: s.optionsJson, now: Date.now() });
  }

  schedules(): PlanSchedule[] {
    return this.schedulesAll.all().map((r) => ({ planName: r.plan_name, cron: r.cron, cycle: r.cycle, optionsJson: r.options_json, createdAt: new Date(r.created_at) }));
  }

  unschedule(planName: string): boolean {
    return this.removeSchedule.run(planName).changes > 0;
  }
}
