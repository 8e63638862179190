import type Database from "better-sqlite3";
import type { ReplicationPolicy } from "../../proto/index.js";
import {
  builtInPolicies,
  DEFAULT_POLICY_NAME,
  FAILBACK_POLICY_NAME,
  OFF_HOURS_RESYNC_SCHEDULE,
} from "./built-in-policies.js";
import { validatePolicy } from "./policy-validation.js";
import { alreadyExists, invalid, notFound, wrongState } from "./store-error.js";

interface PolicyRow {
  name: string;
  rpo_threshold_seconds: number;
  retention_seconds: number;
  crash_consistent_frequency_seconds: number;
  app_consistent_frequency_seconds: number;
  resync_schedule: string;
  failback: number;
  builtin: number;
}

function policyFromRow(r: PolicyRow): ReplicationPolicy {
  return {
    name: r.name,
    rpoThresholdSeconds: r.rpo_threshold_seconds,
    recoveryPointRetentionSeconds: r.retention_seconds,
    crashConsistentFrequencySeconds: r.crash_consistent_frequency_seconds,
    appConsistentFrequencySeconds: r.app_consistent_frequency_seconds,
    resyncSchedule: r.resync_schedule,
    failback: r.failback === 1,
  };
}

function rowParams(p: ReplicationPolicy, builtin: boolean) {
  return {
    name: p.name,
    rpo: p.rpoThresholdSeconds,
    retention: p.recoveryPointRetentionSeconds,
    crash: p.crashConsistentFrequencySeconds,
    app: p.appConsistentFrequencySeconds,
    schedule: p.resyncSchedule,
    failback: p.failback ? 1 : 0,
    builtin: builtin ? 1 : 0,
  };
}

export class PoliciesTable {
  private readonly byName;
  private readonly all;
  private readonly insert;
  private readonly updateRow;
  private readonly remove;
  private readonly usage;

  constructor(
    db: Database.Database,
    private readonly timeUnitSeconds: number,
  ) {
    this.byName = db.prepare<[string], PolicyRow>("SELECT * FROM policies WHERE name = ?");
    this.all = db.prepare<[], PolicyRow>("SELECT * FROM policies ORDER BY name");
    this.insert = db.prepare(
      `INSERT INTO policies (name, rpo_threshold_seconds, retention_seconds,
         crash_consistent_frequency_seconds, app_consistent_frequency_seconds, resync_schedule,
         failback, builtin)
       VALUES (@name, @rpo, @retention, @crash, @app, @schedule, @failback, @builtin)`,
    );
    this.updateRow = db.prepare(
      `UPDATE policies SET rpo_threshold_seconds = @rpo, retention_seconds = @retention,
         crash_consistent_frequency_seconds = @crash, app_consistent_frequency_seconds = @app,
         resync_schedule = @schedule, failback = @failback, builtin = @builtin
       WHERE name = @name`,
    );
    this.remove = db.prepare<[string]>("DELETE FROM policies WHERE name = ?");
    this.usage = db.prepare<[string], { n: number }>(
      "SELECT COUNT(*) AS n FROM machines WHERE policy_name = ?",
    );
  }

  /**
   * Write the built-ins for the current time unit. The failback policy is owned by the code and
   * always rewritten; `default` only while nobody has edited it.
   */
  seedBuiltIns(): void {
    for (const p of builtInPolicies(this.timeUnitSeconds)) {
      const row = this.byName.get(p.name);
      if (!row) this.insert.run(rowParams(p, true));
      else if (row.builtin === 1) this.updateRow.run(rowParams(p, true));
    }
  }

  get(name: string): ReplicationPolicy | undefined {
    const row = this.byName.get(name);
    return row ? policyFromRow(row) : undefined;
  }

  mustGet(name: string): ReplicationPolicy {
    const p = this.get(name);
    if (!p) throw notFound("replication policy", name);
    return p;
  }

  list(): ReplicationPolicy[] {
    return this.all.all().map(policyFromRow);
  }

  create(input: ReplicationPolicy): ReplicationPolicy {
    const p = this.prepareUserPolicy(input);
    if (this.byName.get(p.name)) {
      throw alreadyExists(`replication policy "${p.name}" already exists`);
    }
    this.insert.run(rowParams(p, false));
    return this.mustGet(p.name);
  }

  /** Replace an existing policy's values; editing `default` stops it being re-seeded. */
  update(input: ReplicationPolicy): ReplicationPolicy {
    const p = this.prepareUserPolicy(input);
    this.mustGet(p.name);
    this.updateRow.run(rowParams(p, false));
    return this.mustGet(p.name);
  }

  delete(name: string): void {
    this.assertMutable(name);
    if (name === DEFAULT_POLICY_NAME) {
      throw wrongState(`the built-in "${DEFAULT_POLICY_NAME}" policy cannot be deleted`);
    }
    this.mustGet(name);
    const n = this.usage.get(name)?.n ?? 0;
    if (n > 0) {
      throw wrongState(`replication policy "${name}" is used by ${n} machine(s); move them to another policy first`,
      );
    }
    this.remove.run(name);
  }

  private prepareUserPolicy(input: ReplicationPolicy): ReplicationPolicy {
    this.assertMutable(input.name);
    if (input.failback) {
      throw invalid(`policy "${input.name}": only the built-in "${FAILBACK_POLICY_NAME}" policy can be a failback policy`,
      );
    }
    const p = { ...input, resyncSchedule: input.resyncSchedule || OFF_HOURS_RESYNC_SCHEDULE };
    validatePolicy(p, this.timeUnitSeconds);
    return p;
  }

  private assertMutable(name: string): void {
    if (name === FAILBACK_POLICY_NAME) {
      throw wrongState(`the "${FAILBACK_POLICY_NAME}" policy has fixed values (ASR creates it for failback); it cannot be modified or deleted`,
      );
    }
  }
}
