import { type Job, type JobResult, JobState, JobType, type Machine, ReplicationDirection, ReplicationState, SiteLocation, type SyncResult, TagPhase, type WorkloadCommand } from "../proto/index.js";
import { jobTypes, syncModes, workloadProfiles } from "../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import type { CommandBus } from "./command-bus.js";
import { expectSuccess, resultOf } from "./command-outcome.js";
import { proofsFromAgent } from "./agent-proofs.js";
import type { ComponentAccess } from "./component-clients.js";
import { JobRunner } from "./job-runner.js";
import { waitReplicaProcessed } from "./replica-processed.js";
import { type ConfigStore, isTerminalJobState } from "./store/index.js";

export interface JobContext {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  syncBlockBytes: number;
  /** How long to wait for a step that depends on replication catching up. */
  stepTimeoutMs: number;
  /** How to reach process servers (to have a copy applied at once); heartbeats only without it. */
  access?: ComponentAccess;
}

const STEPS = {
  prerequisites: "Prerequisites check",
  enable: "Enable protection",
  initial: "Initial replication",
  finalize: "Finalize protection",
  resync: "Resync",
  tag: "Insert app-consistent tag",
  point: "Create recovery point",
  workload: "Run workload",
} as const;

/**
 * The protection jobs of DESIGN.md §1: enable protection → initial replication → finalize, and
 * resync, app-consistent tags and workloads. Each runs in the background and records its steps.
 */
export class ProtectionJobs {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: JobContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  private step<T>(job: Job, name: string, fn: () => Promise<T>): Promise<T> {
    return this.runner.step(job, name, fn);
  }

  private waitFor<T>(what: string, probe: () => T | undefined): Promise<T> {
    return this.runner.waitFor(what, this.ctx.stepTimeoutMs, probe);
  }

  private run(job: Job, machineId: string | undefined, body: () => Promise<JobResult | undefined>, stateOnFailure?: ReplicationState): void {
    this.runner.run(job, body, () => {
      if (machineId) this.ctx.store.updateMachine(machineId, { state: stateOnFailure ?? ReplicationState.REPLICATION_STATE_UNPROTECTED });
    });
  }


  enableProtection(machineRef: string, policyName: string): Job {
    const { store } = this.ctx;
    const machine = this.requireMachine(machineRef);
    const policy = store.getPolicy(policyName);
    if (!policy) throw new SrlabError(ErrorCode.NOT_FOUND, `no replication policy named "${policyName}" (see srlab policies)`);
    const busy = [ReplicationState.REPLICATION_STATE_UNPROTECTED, ReplicationState.REPLICATION_STATE_UNSPECIFIED];
    if (!busy.includes(machine.state)) {
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${machine.name} is ${stateName(machine.state)}; enable protection needs an unprotected machine`,
      );
    }
    const job = store.createJob({
      type: JobType.JOB_TYPE_ENABLE_PROTECTION,
      machineId: machine.machineId,
      steps: [STEPS.prerequisites, STEPS.enable, STEPS.initial, STEPS.finalize],
    });
    store.updateMachine(machine.machineId, {
      state: ReplicationState.REPLICATION_STATE_ENABLING_PROTECTION,
      policyName: policy.name,
      direction: ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE,
    });
    this.run(job, machine.machineId, async () => {
      await this.step(job, STEPS.prerequisites, async () => {
        this.checkAgentReachable(machine);
        if (machine.disks.length === 0) throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${machine.name} reported no disks`);
      });
      await this.step(job, STEPS.enable, async () => {
        // A machine coming back from failback keeps the process server that holds its history.
        const current = machine.processServerId ? store.getComponent(machine.processServerId) : undefined;
        const ps =
          current?.location === SiteLocation.SITE_LOCATION_ON_PREMISES
            ? current
            : store.assignProcessServer(machine.machineId, SiteLocation.SITE_LOCATION_ON_PREMISES);
        await this.sendAssignment(job.jobId, machine.machineId);
        return `process server ${ps.name}`;
      });
      store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION });
      const sync = await this.step(job, STEPS.initial, () => this.sync(job.jobId, machine.machineId, "initial"));
      await this.step(job, STEPS.finalize, async () => {
        await this.waitProcessed(machine.machineId, sync.endSequence);
      });
      store.updateMachine(machine.machineId, {
        state: ReplicationState.REPLICATION_STATE_PROTECTED,
        resyncRequired: false,
        resyncReason: "",
      });
      return { kind: { $case: "sync", value: sync } };
    });
    return job;
  }

  startResync(machineRef: string, reason = "requested"): Job {
    const { store } = this.ctx;
    const machine = this.requireMachine(machineRef);
    const allowed = [
      ReplicationState.REPLICATION_STATE_PROTECTED,
      ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
      ReplicationState.REPLICATION_STATE_RESYNCING,
    ];
    if (!allowed.includes(machine.state)) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; resync needs a protected machine`);
    }
    const running = store.listJobs(machine.machineId).find((j) => j.type === JobType.JOB_TYPE_RESYNC && isActive(j.state));
    if (running) return running;
    const job = store.createJob({ type: JobType.JOB_TYPE_RESYNC, machineId: machine.machineId, steps: [STEPS.prerequisites, STEPS.resync, STEPS.finalize] });
    store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_RESYNCING });
    this.ctx.logger.info("resync started", { machine: machine.name, reason });
    this.run(
      job,
      machine.machineId,
      async () => {
        await this.step(job, STEPS.prerequisites, async () => this.checkAgentReachable(machine));
        await this.sendAssignment(job.jobId, machine.machineId);
        const sync = await this.step(job, STEPS.resync, () => this.sync(job.jobId, machine.machineId, "resync"));
        await this.step(job, STEPS.finalize, () => this.waitProcessed(machine.machineId, sync.endSequence));
        store.updateMachine(machine.machineId, {
          state: ReplicationState.REPLICATION_STATE_PROTECTED,
          resyncRequired: false,
          resyncReason: "",
        });
        return { kind: { $case: "sync", value: sync } };
      },
      ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
    );
    return job;
  }

  appConsistentPoint(machineRef: string, tagName: string): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireProtected(machineRef, "an app-consistent point");
    const name = tagName || `app-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    const job = store.createJob({ type: JobType.JOB_TYPE_APP_CONSISTENT_POINT, machineId: machine.machineId, steps: [STEPS.tag, STEPS.point] });
    this.run(job, undefined, async () => {
      // Replicating back from Azure, the machine that writes (and is tagged) is the Azure one.
      const reverse = machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES;
      const tag = await this.step(job, STEPS.tag, async () =>
        resultOf(
          await bus.send(reverse ? machine.azureAgentComponentId : machine.agentComponentId, job.jobId, {
            $case: "insertTag",
            value: { machineId: machine.machineId, tagName: name, consistencyGroup: "", phase: TagPhase.TAG_PHASE_UNSPECIFIED, holdTimeoutMs: 0 },
          }),
          "insertTag",
          "insert tag",
        ),
      );
      const sequence = tag.sequence;
      store.addProofs(machine.machineId, sequence, proofsFromAgent(tag.proofs));
      const rp = await this.step(job, STEPS.point, () =>
        this.waitFor(`recovery point for tag ${name}`, () =>
          store.listRecoveryPoints(machine.machineId).find((p) => p.tagName === name && p.sequence >= sequence),
        ),
      );
      const fingerprints = tag.proofs.map((p) => p.fingerprint);
      return { kind: { $case: "appConsistentPoint", value: { tagName: name, sequence, recoveryPointId: rp.recoveryPointId, fingerprints } } };
    });
    return job;
  }

  /** Generated writes on the machine's disk; `inAzure` writes the disks of the machine running in Azure. */
  workload(machineRef: string, spec: WorkloadCommand, inAzure = false): Job {
    const { store, bus } = this.ctx;
    workloadProfiles.require(spec.profile);
    const machine = this.requireMachine(machineRef);
    const agent = inAzure ? machine.azureAgentComponentId : machine.agentComponentId;
    if (inAzure) {
      if (!agent || !bus.isConnected(agent)) throw new SrlabError(ErrorCode.UNAVAILABLE, `${machine.name} is not running in Azure (its Azure agent is not connected)`);
    } else {
      this.checkAgentReachable(machine);
    }
    const job = store.createJob({ type: JobType.JOB_TYPE_WORKLOAD, machineId: machine.machineId, steps: [STEPS.workload] });
    this.run(job, undefined, async () => {
      const wrote = await this.step(job, STEPS.workload, async () =>
        resultOf(await bus.send(agent, job.jobId, { $case: "workload", value: { ...spec, machineId: machine.machineId } }), "workload", "workload"),
      );
      return { kind: { $case: "workload", value: wrote } };
    });
    return job;
  }

  /** Stops a running workload job: the agent stops writing and the job ends Cancelled. */
  async cancelWorkload(jobId: string, reason: string): Promise<Job> {
    const { store, bus } = this.ctx;
    const job = store.getJob(jobId);
    if (!job) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${jobId}`);
    if (job.type !== JobType.JOB_TYPE_WORKLOAD) throw new SrlabError(ErrorCode.WRONG_STATE, `job ${jobId} is a ${jobTypes.name(job.type)} job; only Workload jobs can be cancelled`);
    if (isTerminalJobState(job.state)) return job;
    const machine = store.getMachine(job.machineId);
    if (!machine) throw new SrlabError(ErrorCode.NOT_FOUND, `job ${jobId}'s machine is gone`);
    this.runner.markCancelled(jobId, reason || "cancelled by the administrator");
    expectSuccess(await bus.send(machine.agentComponentId, jobId, { $case: "stopWorkload", value: { jobId } }), "stop workload");
    return store.getJob(jobId)!;
  }

  /** Sends the machine's assignment (process server, policy) to the agent and the process server. */
  async sendAssignment(jobId: string, machineId: string): Promise<void> {
    const { store, bus } = this.ctx;
    const machine = store.getMachine(machineId)!;
    const ps = store.getComponent(machine.processServerId);
    if (!ps) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no process server assigned`);
    const policy = store.getPolicy(machine.policyName);
    const assignment = {
      machineId,
      processServerId: ps.componentId,
      processServerAddress: ps.address,
      policy,
      state: machine.state,
      direction: machine.direction,
      masterTargetId: "",
      masterTargetAddress: "",
    };
    const [toPs, toAgent] = await Promise.all([
      bus.send(ps.componentId, jobId, { $case: "assignment", value: assignment }),
      bus.send(machine.agentComponentId, jobId, { $case: "assignment", value: assignment }),
    ]);
    expectSuccess(toPs, `assignment on process server ${ps.name}`);
    expectSuccess(toAgent, `assignment on agent of ${machine.name}`);
  }

  private async sync(jobId: string, machineId: string, modeName: "initial" | "resync"): Promise<SyncResult> {
    const mode = syncModes.parse(modeName);
    const machine = this.ctx.store.getMachine(machineId)!;
    const outcome = await this.ctx.bus.send(machine.agentComponentId, jobId, {
      $case: "startSync",
      value: { machineId, mode, blockSize: this.ctx.syncBlockBytes, diskIndexes: [] },
    });
    return resultOf(outcome, "startSync", `${modeName} copy`);
  }

  private waitProcessed(machineId: string, sequence: number): Promise<void> {
    const { store, logger, access, stepTimeoutMs } = this.ctx;
    return waitReplicaProcessed({ store, logger, access, runner: this.runner, timeoutMs: stepTimeoutMs }, machineId, sequence);
  }

  private requireMachine(ref: string): Machine {
    const machine = this.ctx.store.getMachine(ref);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
    return machine;
  }

  private requireProtected(ref: string, what: string): Machine {
    const machine = this.requireMachine(ref);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; ${what} needs a protected machine`);
    }
    return machine;
  }

  private checkAgentReachable(machine: Machine): void {
    if (!this.ctx.bus.isConnected(machine.agentComponentId)) {
      throw new SrlabError(ErrorCode.UNAVAILABLE, `the agent of ${machine.name} is not connected to the configuration server; is it running?`);
    }
  }
}

function isActive(state: JobState): boolean {
  return state === JobState.JOB_STATE_IN_PROGRESS || state === JobState.JOB_STATE_NOT_STARTED;
}

/** "REPLICATION_STATE_INITIAL_REPLICATION" → "initial-replication". */
export function stateName(state: ReplicationState): string {
  return (ReplicationState[state] ?? "unknown").replace("REPLICATION_STATE_", "").toLowerCase().replace(/_/g, "-");
}
