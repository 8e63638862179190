// One facade on purpose (about 560 lines): every method delegates in a line or two to the table
// modules beside it (jobs-table.ts, machines-table.ts, …), so the configuration server has one
// store to hold and one transaction to share; the logic lives in the tables.
import type Database from "better-sqlite3";
import {
  type Component,
  ComponentRole,
  type Credential,
  type Disk,
  type Health,
  type JoinToken,
  type HealthIssue,
  type Job,
  type Machine,
  type RecoveryNetwork,
  type RecoveryPoint,
  type ReplicationPolicy,
  SiteLocation,
} from "../../proto/index.js";
import { ASR_MINUTE_SECONDS } from "./built-in-policies.js";
import { type CommandAnswer, CommandsTable, type StoredCommand } from "./commands-table.js";
import { ComponentsTable, type RegisterComponentInput } from "./components-table.js";
import { CredentialsTable, type IssuedCredential } from "./credentials-table.js";
import { JoinTokensTable, type NewJoinToken, type StoredJoinToken } from "./join-tokens-table.js";
import { type GroupPoint, GroupsTable, type ReplicationGroup } from "./groups-table.js";
import { type PlanRunRow, type PlanSchedule, PlansTable, type StoredPlan } from "./plans-table.js";
import { ProofsTable, type StoredProof } from "./proofs-table.js";
import {
  type CreateJobInput,
  type FinishJobInput,
  JobsTable,
  type JobStepUpdate,
} from "./jobs-table.js";
import { type JobReport, JobReportsTable } from "./job-reports-table.js";
import { type MachinePatch, MachinesTable, type UpsertMachineInput } from "./machines-table.js";
import { migrate } from "./migrate.js";
import { openDatabase, type SynchronousMode } from "./open-database.js";
import { NetworksTable } from "./networks-table.js";
import { PoliciesTable } from "./policies-table.js";
import { ProcessServerAssignment } from "./process-server-assignment.js";
import { RecoveryPointsTable } from "./recovery-points-table.js";
import { SettingsTable } from "./settings-table.js";
import { invalid, notFound, storeClosed } from "./store-error.js";

export interface ConfigStoreOptions {
  /**
   * Seconds per ASR minute when seeding the built-in policies: 60 in production, 1 in the lab
   * (then "15 minutes" is 15 s). Only the built-ins are scaled; stored values are seconds.
   */
  timeUnitSeconds?: number;
  /** See open-database.ts; FULL unless a benchmark asks otherwise. */
  synchronous?: SynchronousMode;
}

/**
 * The configuration server's persistent state. All methods are synchronous (better-sqlite3)
 * and each runs in one transaction; `transaction()` groups several calls into one commit
 * (e.g. a heartbeat that updates many machines).
 */
export class ConfigStore {
  private readonly settings: SettingsTable;
  private readonly components: ComponentsTable;
  private readonly policies: PoliciesTable;
  private readonly machines: MachinesTable;
  private readonly recoveryPoints: RecoveryPointsTable;
  private readonly jobs: JobsTable;
  private readonly jobReports: JobReportsTable;
  private readonly commands: CommandsTable;
  private readonly assignment: ProcessServerAssignment;
  private readonly networks: NetworksTable;
  private readonly credentials: CredentialsTable;
  private readonly joinTokens: JoinTokensTable;
  private readonly removeComponent;
  private readonly removeMachine;
  private readonly proofs: ProofsTable;
  private synchronous: SynchronousMode = "FULL";
  private readonly groups: GroupsTable;
  private readonly plans: PlansTable;
  private closed = false;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    readonly timeUnitSeconds: number,
  ) {
    this.settings = new SettingsTable(db);
    this.components = new ComponentsTable(db);
    this.policies = new PoliciesTable(db, timeUnitSeconds);
    this.recoveryPoints = new RecoveryPointsTable(db);
    this.machines = new MachinesTable(db, this.recoveryPoints);
    this.jobs = new JobsTable(db);
    this.jobReports = new JobReportsTable(db);
    this.commands = new CommandsTable(db);
    this.networks = new NetworksTable(db);
    this.credentials = new CredentialsTable(db);
    this.joinTokens = new JoinTokensTable(db);
    this.removeComponent = db.prepare<[string]>("DELETE FROM components WHERE component_id = ?");
    this.removeMachine = db.prepare<[string]>("DELETE FROM machines WHERE machine_id = ?");
    this.proofs = new ProofsTable(db);
    this.groups = new GroupsTable(db);
    this.plans = new PlansTable(db);
    this.assignment = new ProcessServerAssignment(db, (id) => this.components.get(id));
  }

  /** Opens (creating if needed) and migrates the database; refuses a newer schema. */
  static open(path: string, options: ConfigStoreOptions = {}): ConfigStore {
    const unit = options.timeUnitSeconds ?? ASR_MINUTE_SECONDS;
    if (!Number.isFinite(unit) || unit <= 0) {
      throw invalid(`timeUnitSeconds must be a positive number, got ${unit}`);
    }
    const db = openDatabase(path, options.synchronous ?? "FULL");
    try {
      migrate(db);
      const store = new ConfigStore(db, path, unit);
      store.synchronous = options.synchronous ?? "FULL";
      store.tx(() => store.policies.seedBuiltIns());
      return store;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /** Schema version the database is at. */
  schemaVersion(): number {
    const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  /** Run `fn` in one transaction (nested store calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.tx(fn);
  }

  /**
   * Runs `fn` in one transaction whose commit skips the fsync (synchronous=NORMAL): it survives
   * the daemon's crash but a power cut may roll it back, until the next ordinary commit fsyncs
   * the log with it. Only for writes the sender states again on its next call — a heartbeat's
   * health and machine reports — which were most of the daemon's CPU when every one of them
   * fsynced: nothing acknowledged rests on them. Inside another transaction it simply joins it.
   */
  restatedTransaction<T>(fn: () => T): T {
    if (this.db.inTransaction || this.synchronous === "NORMAL") return this.tx(fn);
    this.db.pragma("synchronous = NORMAL");
    try {
      return this.tx(fn);
    } finally {
      this.db.pragma(`synchronous = ${this.synchronous}`);
    }
  }

  /** Whether commits made now fsync (FULL) or not (NORMAL); see open-database.ts. */
  durability(): SynchronousMode {
    return this.db.pragma("synchronous", { simple: true }) === 1 ? "NORMAL" : "FULL";
  }

  // --- settings ---

  getSetting(key: string): string | undefined {
    return this.settings.get(key);
  }

  setSetting(key: string, value: string): void {
    if (key === "") throw invalid("setting key must not be empty");
    this.tx(() => this.settings.set(key, value));
  }

  deleteSetting(key: string): boolean {
    return this.tx(() => this.settings.delete(key));
  }

  // --- credentials and join tokens ---

  addCredential(c: IssuedCredential): void {
    this.tx(() => this.credentials.add(c));
  }

  getCredential(id: string): Credential | undefined {
    return this.credentials.get(id);
  }

  /** Every credential, or those issued to one component (by id). */
  listCredentials(componentId?: string): Credential[] {
    return this.credentials.list(componentId);
  }

  revokeCredential(id: string, reason: string, at: Date = new Date()): boolean {
    return this.tx(() => this.credentials.revoke(id, reason, at));
  }

  revokedCredentialIds(now: Date = new Date()): string[] {
    return this.credentials.revokedIds(now);
  }

  addJoinToken(t: NewJoinToken): void {
    this.tx(() => this.joinTokens.add(t));
  }

  getJoinToken(id: string, now: Date = new Date()): StoredJoinToken | undefined {
    return this.joinTokens.get(id, now);
  }

  listJoinTokens(now: Date = new Date()): JoinToken[] {
    return this.joinTokens.list(now);
  }

  recordJoinTokenUse(id: string): void {
    this.tx(() => this.joinTokens.recordUse(id));
  }

  revokeJoinToken(id: string, at: Date = new Date()): boolean {
    return this.tx(() => this.joinTokens.revoke(id, at));
  }

  // --- components ---

  /** Unregisters a component; its pending commands go with it, machines it served lose it. */
  deleteComponent(id: string): boolean {
    return this.tx(() => this.removeComponent.run(id).changes > 0);
  }

  /** Forgets a machine with its disks and recovery points (its jobs stay, without the machine). */
  deleteMachine(id: string): boolean {
    return this.tx(() => this.removeMachine.run(id).changes > 0);
  }

  /** Re-registering the same role+name keeps the component id (a restarted daemon). */
  registerComponent(input: RegisterComponentInput): Component {
    return this.tx(() => this.components.register(input));
  }

  getComponent(id: string): Component | undefined {
    return this.components.get(id);
  }

  findComponentByName(role: ComponentRole, name: string): Component | undefined {
    return this.components.findByName(role, name);
  }

  listComponents(role?: ComponentRole): Component[] {
    return this.components.list(role);
  }

  /** For authenticating a component's calls; never part of the Component message. */
  getComponentCredentialHash(id: string): string | undefined {
    return this.components.credentialHash(id);
  }

  /**
   * `pendingBytes` (a process server's total backlog) feeds the least-loaded tie-break; omit it
   * to keep the previous value.
   */
  recordHeartbeat(
    id: string,
    health: Health,
    issues: HealthIssue[],
    at: Date = new Date(),
    pendingBytes?: number,
  ): Component {
    return this.tx(() => this.components.recordHeartbeat(id, health, issues, at, pendingBytes));
  }

  // --- machines ---

  /** By name; a known machine gets the (new) agent id and keeps its machine id. */
  upsertMachine(input: UpsertMachineInput): Machine {
    return this.tx(() => {
      if (input.agentComponentId !== "") this.components.mustGet(input.agentComponentId);
      return this.machines.upsert(input);
    });
  }

  /** Known disks keep their index; a disk added later records its added_at_sequence. */
  setMachineDisks(machineId: string, disks: Disk[]): Machine {
    return this.tx(() => this.machines.setDisks(machineId, disks));
  }

  getMachine(idOrName: string): Machine | undefined {
    return this.tx(() => this.machines.get(idOrName));
  }

  listMachines(): Machine[] {
    return this.tx(() => this.machines.list());
  }

  updateMachine(id: string, patch: MachinePatch): Machine {
    return this.tx(() => {
      if (patch.processServerId) this.mustBeProcessServer(patch.processServerId);
      if (patch.policyName) this.policies.mustGet(patch.policyName);
      return this.machines.update(id, patch);
    });
  }

  // --- process server assignment ---

  /** Assigns and records the least-loaded PS of `location`; throws FAILED_PRECONDITION if none. */
  assignProcessServer(machineId: string, location: SiteLocation = SiteLocation.SITE_LOCATION_ON_PREMISES): Component {
    return this.tx(() => this.assignment.assignTo(this.machines.mustGet(machineId).machineId, location));
  }

  machinesOfProcessServer(psId: string): Machine[] {
    return this.tx(() => this.machines.ofProcessServerId(psId));
  }

  // --- policies ---

  createPolicy(p: ReplicationPolicy): ReplicationPolicy {
    return this.tx(() => this.policies.create(p));
  }

  /** Throws FAILED_PRECONDITION for the failback policy. */
  updatePolicy(p: ReplicationPolicy): ReplicationPolicy {
    return this.tx(() => this.policies.update(p));
  }

  /** Throws FAILED_PRECONDITION for the built-ins and for a policy machines still use. */
  deletePolicy(name: string): void {
    this.tx(() => this.policies.delete(name));
  }

  getPolicy(name: string): ReplicationPolicy | undefined {
    return this.policies.get(name);
  }

  listPolicies(): ReplicationPolicy[] {
    return this.policies.list();
  }

  // networks

  upsertNetwork(n: RecoveryNetwork): RecoveryNetwork {
    return this.tx(() => this.networks.upsert(n));
  }

  getNetwork(name: string): RecoveryNetwork | undefined {
    return this.networks.get(name);
  }

  listNetworks(): RecoveryNetwork[] {
    return this.networks.list();
  }

  // --- jobs ---

  createJob(input: CreateJobInput): Job {
    return this.tx(() => {
      const machineId = input.machineId === "" ? "" : this.machines.mustGet(input.machineId).machineId;
      return this.jobs.create({ ...input, machineId });
    });
  }

  updateJobStep(jobId: string, stepName: string, update: JobStepUpdate, at: Date = new Date()): Job {
    return this.tx(() => this.jobs.updateJobStep(jobId, stepName, update, at));
  }

  finishJob(jobId: string, input: FinishJobInput, at: Date = new Date()): Job {
    return this.tx(() => this.jobs.finishJob(jobId, input, at));
  }

  /** Keeps a report file with a job (replacing one of the same name). */
  attachJobReport(jobId: string, name: string, content: Buffer, at: Date = new Date()): void {
    this.tx(() => {
      this.jobs.mustGet(jobId);
      this.jobReports.attach(jobId, name, content, at);
    });
  }

  jobReport(jobId: string, name: string): JobReport {
    return this.tx(() => this.jobReports.mustGet(jobId, name));
  }

  addJobBytes(jobId: string, n: number): Job {
    return this.tx(() => this.jobs.addJobBytes(jobId, n));
  }

  getJob(id: string): Job | undefined {
    return this.tx(() => this.jobs.get(id));
  }

  /** Newest first. */
  listJobs(machineId?: string): Job[] {
    return this.tx(() => this.jobs.list(machineId === undefined ? undefined : this.resolveMachineId(machineId)));
  }

  /** Restart recovery: every NOT_STARTED/IN_PROGRESS job fails with `reason`; returns them. */
  failUnfinishedJobs(reason: string, at: Date = new Date()): Job[] {
    return this.tx(() => this.jobs.failUnfinished(reason, at));
  }

  // --- proofs ---

  /** Fingerprints of a machine's disks at one sequence (from a tag or a source shutdown). */
  addProofs(machineId: string, sequence: number, proofs: ReadonlyArray<Omit<StoredProof, "machineId" | "sequence">>): void {
    this.tx(() => {
      for (const p of proofs) this.proofs.add({ ...p, machineId, sequence });
    });
  }

  proofsAt(machineId: string, sequence: number): StoredProof[] {
    return this.proofs.at(machineId, sequence);
  }

  proofSequences(machineId: string): number[] {
    return this.proofs.sequences(machineId);
  }

  // --- replication groups ---

  putGroup(name: string, machineIds: string[]): ReplicationGroup {
    return this.tx(() => this.groups.put(name, machineIds));
  }

  getGroup(name: string): ReplicationGroup | undefined {
    return this.groups.get(name);
  }

  listGroups(): ReplicationGroup[] {
    return this.groups.list();
  }

  deleteGroup(name: string): boolean {
    return this.tx(() => this.groups.delete(name));
  }

  addGroupPoint(p: GroupPoint): void {
    this.tx(() => this.groups.addPoint(p));
  }

  /** Oldest first. */
  listGroupPoints(groupName: string): GroupPoint[] {
    return this.groups.points(groupName);
  }

  getGroupPoint(id: string): GroupPoint | undefined {
    return this.groups.point(id);
  }

  // --- recovery plans ---

  putPlan(name: string, source: string, specJson: string): StoredPlan {
    return this.tx(() => this.plans.put(name, source, specJson));
  }

  getPlan(name: string): StoredPlan | undefined {
    return this.plans.get(name);
  }

  listPlans(): StoredPlan[] {
    return this.plans.list();
  }

  deletePlan(name: string): boolean {
    return this.tx(() => this.plans.delete(name));
  }

  /** A plan run is a job; this records which plan and operation it runs. */
  createPlanRun(input: CreateJobInput, run: { planName: string; operation: string; optionsJson: string }): Job {
    return this.tx(() => {
      const job = this.jobs.create(input);
      this.plans.addRun({ jobId: job.jobId, ...run });
      return job;
    });
  }

  getPlanRun(jobId: string): PlanRunRow | undefined {
    return this.plans.run(jobId);
  }

  listPlanRuns(planName?: string): PlanRunRow[] {
    return this.plans.runs(planName);
  }

  schedulePlan(s: Omit<PlanSchedule, "createdAt">): void {
    this.tx(() => this.plans.schedule(s));
  }

  listPlanSchedules(): PlanSchedule[] {
    return this.plans.schedules();
  }

  unschedulePlan(planName: string): boolean {
    return this.tx(() => this.plans.unschedule(planName));
  }

  // --- recovery points ---

  /** Idempotent by recovery point id. */
  addRecoveryPoint(rp: RecoveryPoint): RecoveryPoint {
    return this.tx(() => {
      // By id only: a machine name here would be a reporter bug.
      if (this.machines.get(rp.machineId)?.machineId !== rp.machineId) throw notFound("machine", rp.machineId);
      return this.recoveryPoints.add(rp);
    });
  }

  getRecoveryPoint(id: string): RecoveryPoint | undefined {
    return this.recoveryPoints.get(id);
  }

  /**
   * Every machine with its newest recovery point and the policies, read in one transaction with
   * a fixed number of queries whatever the number of machines (what status needs).
   */
  machineOverview(): { machines: Machine[]; latestPoints: Map<string, RecoveryPoint>; policies: Map<string, ReplicationPolicy> } {
    return this.tx(() => ({
      machines: this.machines.list(),
      latestPoints: this.recoveryPoints.latestOfEach(),
      policies: new Map(this.policies.list().map((p) => [p.name, p])),
    }));
  }

  /** Ordered by sequence (oldest first). */
  listRecoveryPoints(machineId: string): RecoveryPoint[] {
    return this.tx(() => this.recoveryPoints.list(machineId));
  }

  /** Marks every point at or below `throughSequence` processed; returns how many changed. */
  markProcessed(machineId: string, throughSequence: number): number {
    return this.tx(() => this.recoveryPoints.markProcessed(machineId, throughSequence));
  }

  /** Removes all points of the machine except `exceptIds` (failover commit); returns removed. */
  deleteRecoveryPoints(machineId: string, exceptIds: string[]): RecoveryPoint[] {
    return this.tx(() => this.recoveryPoints.deleteExcept(machineId, exceptIds));
  }

  /** Removes points older than `olderThan` (retention); returns removed. */
  pruneRecoveryPoints(machineId: string, olderThan: Date): RecoveryPoint[] {
    return this.tx(() => this.recoveryPoints.prune(machineId, olderThan));
  }

  // --- command outbox ---

  /**
   * Payload is stored as JSON (Dates become ISO strings; pass proto messages through their
   * toJSON). Returns the command id.
   */
  enqueueCommand(componentId: string, jobId: string, payload: object): string {
    return this.tx(() => {
      this.components.mustGet(componentId);
      if (jobId !== "") this.jobs.mustGet(jobId);
      return this.commands.enqueue(componentId, jobId, payload, new Date());
    });
  }

  /** Oldest first. */
  pendingCommands(componentId: string): StoredCommand[] {
    return this.commands.pendingFor(componentId);
  }

  /** Idempotent: a repeated report keeps the first result. */
  completeCommand(id: string, answer: CommandAnswer): StoredCommand {
    return this.tx(() => this.commands.complete(id, answer, new Date()));
  }

  getCommand(id: string): StoredCommand | undefined {
    return this.commands.get(id);
  }

  // --- internals ---

  private tx<T>(fn: () => T): T {
    if (this.closed) throw storeClosed();
    return this.db.transaction(fn)();
  }

  /** Jobs and lists accept a machine name too; store its id. */
  private resolveMachineId(idOrName: string): string {
    if (idOrName === "") return "";
    return this.machines.get(idOrName)?.machineId ?? idOrName;
  }

  private mustBeProcessServer(id: string): void {
    const c = this.components.mustGet(id);
    if (c.role !== ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
      throw invalid(`component ${id} (${c.name}) is not a process server`);
    }
  }
}
