import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import {
  type Disk,
  Health,
  type FailoverInfo,
  type HealthIssue,
  type Machine,
  type NetworkMapping,
  ReplicationDirection,
  ReplicationState,
  type ReplicationStats,
} from "../../proto/index.js";
import { MachineDisks } from "./machine-disks.js";
import type { RecoveryPointsTable } from "./recovery-points-table.js";
import { isEnumValue, nullIfEmpty, parseHealthIssues, parseJson } from "./row-codec.js";
import { invalid, notFound } from "./store-error.js";

export interface UpsertMachineInput {
  name: string;
  agentComponentId: string;
}

export type MachinePatch = Partial<{
  state: ReplicationState;
  health: Health;
  issues: HealthIssue[];
  processServerId: string;
  policyName: string;
  direction: ReplicationDirection;
  resyncRequired: boolean;
  resyncReason: string;
  stats: ReplicationStats | undefined;
  azureDisks: Disk[];
  testFailoverActive: boolean;
  networkMapping: NetworkMapping | undefined;
  failover: FailoverInfo | undefined;
  testFailover: FailoverInfo | undefined;
  azureAgentComponentId: string;
  forwardProcessServerId: string;
}>;

interface MachineRow {
  machine_id: string;
  name: string;
  agent_component_id: string | null;
  process_server_id: string | null;
  policy_name: string | null;
  state: number;
  health: number;
  issues_json: string;
  direction: number;
  resync_required: number;
  resync_reason: string;
  stats_json: string | null;
  test_failover_active: number;
  created_at: number;
  network_mapping_json: string | null;
  failover_json: string | null;
  test_failover_json: string | null;
  azure_agent_component_id: string | null;
  forward_process_server_id: string | null;
}

/** Column for each scalar patch field, with its encoder. */
const SCALAR_COLUMNS: Record<string, [string, (v: never) => unknown]> = {
  state: ["state", (v: number) => v],
  health: ["health", (v: number) => v],
  issues: ["issues_json", (v: HealthIssue[]) => JSON.stringify(v)],
  processServerId: ["process_server_id", (v: string) => nullIfEmpty(v)],
  policyName: ["policy_name", (v: string) => nullIfEmpty(v)],
  direction: ["direction", (v: number) => v],
  resyncRequired: ["resync_required", (v: boolean) => (v ? 1 : 0)],
  resyncReason: ["resync_reason", (v: string) => v],
  stats: ["stats_json", (v: ReplicationStats | undefined) => (v ? JSON.stringify(v) : null)],
  testFailoverActive: ["test_failover_active", (v: boolean) => (v ? 1 : 0)],
  networkMapping: ["network_mapping_json", (v: NetworkMapping | undefined) => (v ? JSON.stringify(v) : null)],
  failover: ["failover_json", (v: FailoverInfo | undefined) => (v ? JSON.stringify(v) : null)],
  azureAgentComponentId: ["azure_agent_component_id", (v: string) => nullIfEmpty(v)],
  forwardProcessServerId: ["forward_process_server_id", (v: string) => nullIfEmpty(v)],
  testFailover: ["test_failover_json", (v: FailoverInfo | undefined) => (v ? JSON.stringify(v) : null)],
};

/** Fields for which an explicit `undefined` in a patch clears the column. */
const CLEARABLE = new Set(["stats", "networkMapping", "failover", "testFailover"]);

/** FailoverInfo holds Dates; JSON keeps them as strings. */
function failoverFromJson(json: string | null): FailoverInfo | undefined {
  const v = parseJson<(FailoverInfo & { requestedAt?: string | Date; completedAt?: string | Date }) | undefined>(json, undefined);
  if (!v) return undefined;
  return {
    ...v,
    requestedAt: v.requestedAt ? new Date(v.requestedAt) : undefined,
    completedAt: v.completedAt ? new Date(v.completedAt) : undefined,
  };
}

export class MachinesTable {
  readonly disks: MachineDisks;
  private readonly byId;
  private readonly byName;
  private readonly all;
  private readonly ofProcessServer;
  private readonly insert;
  private readonly setAgent;
  private readonly patchStatements = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    private readonly recoveryPoints: RecoveryPointsTable,
  ) {
    this.disks = new MachineDisks(db);
    this.byId = db.prepare<[string], MachineRow>("SELECT * FROM machines WHERE machine_id = ?");
    this.byName = db.prepare<[string], MachineRow>("SELECT * FROM machines WHERE name = ?");
    this.all = db.prepare<[], MachineRow>("SELECT * FROM machines ORDER BY name");
    this.ofProcessServer = db.prepare<[string], MachineRow>(
      "SELECT * FROM machines WHERE process_server_id = ? ORDER BY name",
    );
    this.insert = db.prepare(
      `INSERT INTO machines (machine_id, name, agent_component_id, state, health, issues_json,
         direction, created_at)
       VALUES (@id, @name, @agent, @state, @health, '[]', @direction, @now)`,
    );
    this.setAgent = db.prepare<[string | null, string]>(
      "UPDATE machines SET agent_component_id = ? WHERE machine_id = ?",
    );
  }

  /** By name: a re-registering agent finds its machine (and its id) again. */
  upsert(input: UpsertMachineInput): Machine {
    if (input.name.trim() === "") throw invalid("machine name must not be empty");
    const existing = this.byName.get(input.name);
    if (existing) {
      this.setAgent.run(nullIfEmpty(input.agentComponentId), existing.machine_id);
      return this.mustGet(existing.machine_id);
    }
    const id = randomUUID();
    this.insert.run({
      id,
      name: input.name,
      agent: nullIfEmpty(input.agentComponentId),
      state: ReplicationState.REPLICATION_STATE_UNPROTECTED,
      health: Health.HEALTH_NORMAL,
      direction: ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE,
      now: Date.now(),
    });
    return this.mustGet(id);
  }

  /** Looks up by id first, then by name (CLI users type names). */
  get(idOrName: string): Machine | undefined {
    const row = this.byId.get(idOrName) ?? this.byName.get(idOrName);
    return row ? this.fromRow(row) : undefined;
  }

  mustGet(idOrName: string): Machine {
    const m = this.get(idOrName);
    if (!m) throw notFound("machine", idOrName);
    return m;
  }

  list(): Machine[] {
    return this.all.all().map((r) => this.fromRow(r));
  }

  ofProcessServerId(psId: string): Machine[] {
    return this.ofProcessServer.all(psId).map((r) => this.fromRow(r));
  }

  setDisks(machineId: string, disks: readonly Disk[]): Machine {
    const m = this.mustGetById(machineId);
    const next = (m.stats?.receivedSequence ?? 0) + 1;
    this.disks.replace(machineId, "source", disks, next);
    return this.mustGet(machineId);
  }

  update(machineId: string, patch: MachinePatch): Machine {
    this.mustGetById(machineId);
    if (patch.state !== undefined && !isEnumValue(ReplicationState, patch.state)) {
      throw invalid(`machine ${machineId}: replication state ${patch.state} is not a known state`);
    }
    if (patch.health !== undefined && !isEnumValue(Health, patch.health)) {
      throw invalid(`machine ${machineId}: health ${patch.health} is not a known health value`);
    }
    if (patch.direction !== undefined && !isEnumValue(ReplicationDirection, patch.direction)) {
      throw invalid(`machine ${machineId}: direction ${patch.direction} is not a known direction`);
    }
    const sets: string[] = [];
    const params: Record<string, unknown> = { id: machineId };
    for (const [field, [column, encode]] of Object.entries(SCALAR_COLUMNS)) {
      if (!(field in patch)) continue;
      const value = (patch as Record<string, unknown>)[field];
      // An explicit undefined clears the clearable fields; others ignore it.
      if (value === undefined && !CLEARABLE.has(field)) continue;
      sets.push(`${column} = @${field}`);
      params[field] = (encode as (v: unknown) => unknown)(value);
    }
    if (sets.length > 0) {
      const sql = `UPDATE machines SET ${sets.join(", ")} WHERE machine_id = @id`;
      let stmt = this.patchStatements.get(sql);
      if (!stmt) {
        stmt = this.db.prepare(sql);
        this.patchStatements.set(sql, stmt);
      }
      stmt.run(params);
    }
    if (patch.azureDisks !== undefined) {
      this.disks.replace(machineId, "azure", patch.azureDisks, 0);
    }
    return this.mustGet(machineId);
  }

  private mustGetById(machineId: string): Machine {
    const row = this.byId.get(machineId);
    if (!row) throw notFound("machine", machineId);
    return this.fromRow(row);
  }

  private fromRow(r: MachineRow): Machine {
    return {
      machineId: r.machine_id,
      name: r.name,
      agentComponentId: r.agent_component_id ?? "",
      processServerId: r.process_server_id ?? "",
      policyName: r.policy_name ?? "",
      state: r.state,
      health: r.health,
      issues: parseHealthIssues(r.issues_json),
      disks: this.disks.list(r.machine_id, "source"),
      stats: parseJson<ReplicationStats | undefined>(r.stats_json, undefined),
      lastRecoveryPoint: this.recoveryPoints.latest(r.machine_id),
      direction: r.direction,
      resyncRequired: r.resync_required === 1,
      resyncReason: r.resync_reason,
      azureDisks: this.disks.list(r.machine_id, "azure"),
      testFailoverActive: r.test_failover_active === 1,
      networkMapping: parseJson<NetworkMapping | undefined>(r.network_mapping_json, undefined),
      failover: failoverFromJson(r.failover_json),
      testFailover: failoverFromJson(r.test_failover_json),
      azureAgentComponentId: r.azure_agent_component_id ?? "",
      forwardProcessServerId: r.forward_process_server_id ?? "",
      // Computed when the machine is shown (resync scheduler), never stored.
      nextResync: undefined,
    };
  }
}
