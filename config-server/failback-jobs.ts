import {
  type Component,
  ComponentRole,
  type Job,
  type Machine,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
} from "../proto/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { unaryCall } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { BlobStore } from "../common/storage/index.js";
import type { CommandBus, CommandOutcome } from "./command-bus.js";
import { type ComponentAccess, withMasterTarget, withProcessServer } from "./component-clients.js";
import { JobRunner } from "./job-runner.js";
import { stateName } from "./protection-jobs.js";
import { FAILBACK_POLICY_NAME } from "./store/index.js";
import type { ConfigStore } from "./store/index.js";

export interface FailbackContext extends ComponentAccess {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  blobs: BlobStore;
  syncBlockBytes: number;
  stepTimeoutMs: number;
}

const STEPS = {
  prerequisites: "Prerequisites check",
  prepare: "Prepare master target",
  enable: "Enable reverse replication",
  resync: "Resync",
  finalize: "Finalize protection",
  shutdown: "Shut down the Azure machine",
  apply: "Apply pending data on the master target",
  start: "Start the on-premises machine",
  remove: "Remove the Azure machine",
} as const;

export interface ReprotectOptions {
  masterTarget: string;
  processServer: string;
  datastore: string;
  alternateLocation: boolean;
}

/**
 * Reprotect to on-premises, planned failover back (failback) and its commit (DESIGN.md §1
 * Failback). Replication runs Azure agent → Azure process server → master target with the fixed
 * failback policy; the first copy is a checksum resync, so only blocks that differ travel.
 */
export class FailbackJobs {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: FailbackContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  reprotectToOnPremises(machine: Machine, o: ReprotectOptions): Job {
    const { store } = this.ctx;
    const mt = this.pick(ComponentRole.COMPONENT_ROLE_MASTER_TARGET, o.masterTarget, SiteLocation.SITE_LOCATION_ON_PREMISES, "master target");
    const ps = this.pick(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, o.processServer, SiteLocation.SITE_LOCATION_AZURE, "process server in Azure");
    if (!machine.azureAgentComponentId || !this.ctx.bus.isConnected(machine.azureAgentComponentId)) {
      throw new SrlabError(ErrorCode.UNAVAILABLE, `the Azure machine ${machine.name} is not running (its agent is not connected); start it first`);
    }
    const job = store.createJob({
      type: "ReprotectToOnPremises",
      machineId: machine.machineId,
      steps: [STEPS.prerequisites, STEPS.prepare, STEPS.enable, STEPS.resync, STEPS.finalize],
    });
    const previous = machine.state;
    store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_REPROTECTING });
    this.runner.run(
      job,
      async () => {
        await this.runner.step(job, STEPS.prerequisites, async () => `master target ${mt.name}, process server ${ps.name}`);
        const targets = await this.runner.step(job, STEPS.prepare, () =>
          withMasterTarget(this.ctx, mt.address, (c) =>
            unaryCall(
              c,
              c.prepareTarget,
              {
                machineId: machine.machineId,
                disks: machine.disks.map((d) => ({ diskIndex: d.index, sizeBytes: d.sizeBytes, imagePath: d.imagePath })),
                alternateLocation: o.alternateLocation,
                datastore: o.datastore,
              },
              this.ctx.credential,
            ),
          ),
        );
        await this.runner.step(job, STEPS.enable, async () => {
          store.updateMachine(machine.machineId, {
            forwardProcessServerId: machine.processServerId || machine.forwardProcessServerId,
            processServerId: ps.componentId,
            policyName: FAILBACK_POLICY_NAME,
            direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
          });
          store.setSetting(masterTargetSetting(machine.machineId), mt.componentId);
          await this.assignReverse(job.jobId, machine.machineId, ps, mt);
        });
        const sync = await this.runner.step(job, STEPS.resync, async () =>
          expectSuccess(
            await this.ctx.bus.send(machine.azureAgentComponentId, job.jobId, {
              $case: "startSync",
              value: { machineId: machine.machineId, mode: "resync", blockSize: this.ctx.syncBlockBytes, diskIndexes: [] },
            }),
            "resync from Azure",
          ),
        );
        await this.runner.step(job, STEPS.finalize, () => this.waitProcessed(machine.machineId, Number(sync.endSequence ?? 0)));
        store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_PROTECTED });
        return { ...sync, masterTarget: mt.name, processServer: ps.name, targetDisks: targets.disks };
      },
      () => store.updateMachine(machine.machineId, { state: previous }),
    );
    return job;
  }

  failback(machineRef: string): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED || machine.direction !== ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
      throw new SrlabError(ErrorCode.WRONG_STATE, failbackRefusal(machine));
    }
    const ps = store.getComponent(machine.processServerId);
    if (!ps) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no process server in Azure assigned`);
    const job = store.createJob({
      type: "Failback",
      machineId: machine.machineId,
      steps: [STEPS.prerequisites, STEPS.shutdown, STEPS.apply, STEPS.start],
    });
    const requestedAt = Date.now();
    store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILBACK_IN_PROGRESS });
    this.runner.run(
      job,
      async () => {
        await this.runner.step(job, STEPS.prerequisites, async () => "");
        // Planned failover: the Azure machine must stop and drain, or nothing happens.
        const stopped = await this.runner.step(job, STEPS.shutdown, async () =>
          expectSuccess(
            await bus.send(machine.azureAgentComponentId, job.jobId, { $case: "stopWrites", value: { machineId: machine.machineId, drain: true } }),
            "shutting down the Azure machine",
          ),
        );
        const lastSequence = Number(stopped.lastSequence ?? 0);
        const drained = await this.runner.step(job, STEPS.apply, () =>
          withProcessServer(this.ctx, ps.address, (c) =>
            unaryCall(c, c.drainMachine, { machineId: machine.machineId, apply: true }, this.ctx.credential, 600_000),
          ),
        );
        const processed = drained.stats?.processedSequence ?? 0;
        if (processed < lastSequence) {
          throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `the master target applied through ${processed} but the Azure machine wrote through ${lastSequence}`);
        }
        await this.runner.step(job, STEPS.start, async () => {
          const resumed = await bus.send(machine.agentComponentId, job.jobId, { $case: "resumeWrites", value: { machineId: machine.machineId } });
          return resumed.success ? "on-premises machine writes again" : `on-premises agent did not resume: ${resumed.error}`;
        });
        store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILED_BACK });
        return { lastSequence, processedSequence: processed, rtoSeconds: (Date.now() - requestedAt) / 1000, achievedRpoSeconds: 0 };
      },
      () => store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_PROTECTED }),
    );
    return job;
  }

  /** Commit after failback: the Azure machine and its disks go; the machine is on-premises again. */
  commitFailback(machine: Machine): Job {
    const { store, blobs } = this.ctx;
    const job = store.createJob({ type: "CommitFailback", machineId: machine.machineId, steps: [STEPS.remove] });
    this.runner.run(job, async () => {
      const removed = await this.runner.step(job, STEPS.remove, async () => {
        const names = (machine.failover?.disks ?? machine.azureDisks).map((d) => d.blobName).filter(Boolean);
        for (const name of names) await blobs.deletePageBlob(name);
        const ps = store.getComponent(machine.processServerId);
        if (ps) this.dropFromProcessServer(machine.machineId, ps);
        store.updateMachine(machine.machineId, {
          state: ReplicationState.REPLICATION_STATE_UNPROTECTED,
          direction: ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE,
          processServerId: machine.forwardProcessServerId,
          azureDisks: [],
          failover: undefined,
          azureAgentComponentId: "",
        });
        return names;
      });
      return { removedDisks: removed };
    });
    return job;
  }

  /** A restarted Azure agent or process server learns again where failback data goes. */
  async resendAssignment(machineId: string): Promise<void> {
    const { store } = this.ctx;
    const machine = store.getMachine(machineId);
    const ps = machine && store.getComponent(machine.processServerId);
    const mtId = store.getSetting(masterTargetSetting(machineId));
    const mt = mtId ? store.getComponent(mtId) : undefined;
    if (!ps || !mt) return;
    await this.assignReverse("", machineId, ps, mt);
  }

  private async assignReverse(jobId: string, machineId: string, ps: Component, mt: Component): Promise<void> {
    const { store, bus } = this.ctx;
    const machine = store.getMachine(machineId)!;
    const assignment = {
      machineId,
      processServerId: ps.componentId,
      processServerAddress: ps.address,
      policy: store.getPolicy(FAILBACK_POLICY_NAME),
      state: machine.state,
      direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
      masterTargetId: mt.componentId,
      masterTargetAddress: mt.address,
    };
    const [toPs, toAgent] = await Promise.all([
      bus.send(ps.componentId, jobId, { $case: "assignment", value: assignment }),
      bus.send(machine.azureAgentComponentId, jobId, { $case: "assignment", value: assignment }),
    ]);
    expectSuccess(toPs, `assignment on process server ${ps.name}`);
    expectSuccess(toAgent, `assignment on the Azure agent of ${machine.name}`);
  }

  private dropFromProcessServer(machineId: string, ps: Component): void {
    this.ctx.bus.post(ps.componentId, "", {
      $case: "assignment",
      value: {
        machineId,
        processServerId: ps.componentId,
        processServerAddress: ps.address,
        policy: undefined,
        state: ReplicationState.REPLICATION_STATE_UNPROTECTED,
        direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
        masterTargetId: "",
        masterTargetAddress: "",
      },
    });
  }

  private waitProcessed(machineId: string, sequence: number): Promise<unknown> {
    return this.runner.waitFor(`the master target to apply sequence ${sequence}`, this.ctx.stepTimeoutMs, () => {
      const m = this.ctx.store.getMachine(machineId);
      return m?.stats && m.stats.processedSequence >= sequence ? true : undefined;
    });
  }

  private pick(role: ComponentRole, name: string, location: SiteLocation, what: string): Component {
    const candidates = this.ctx.store.listComponents(role).filter((c) => c.location === location);
    const chosen = name ? candidates.find((c) => c.name === name) : candidates[0];
    if (!chosen) {
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        name ? `no ${what} named ${name} (have: ${candidates.map((c) => c.name).join(", ") || "none"})` : `no ${what} is registered`,
      );
    }
    return chosen;
  }

  private requireMachine(ref: string): Machine {
    const machine = this.ctx.store.getMachine(ref);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
    return machine;
  }
}

function masterTargetSetting(machineId: string): string {
  return `failback-master-target:${machineId}`;
}

function expectSuccess(outcome: CommandOutcome, what: string): Record<string, unknown> {
  if (!outcome.success) throw new SrlabError(ErrorCode.INTERNAL, `${what} failed: ${outcome.error}`);
  return outcome.result;
}

/** Why failback cannot start now, in terms of where the machine really is and what to do next. */
export function failbackRefusal(machine: Pick<Machine, "name" | "state" | "direction">): string {
  const n = machine.name;
  const back = machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES;
  const S = ReplicationState;
  const where: Partial<Record<ReplicationState, string>> = {
    [S.REPLICATION_STATE_UNPROTECTED]: "not protected",
    [S.REPLICATION_STATE_FAILOVER_IN_PROGRESS]: "failing over to Azure right now",
    [S.REPLICATION_STATE_FAILED_OVER]: `failed over to Azure and not committed yet: commit the failover (srlab commit ${n}), then reprotect it to on-premises (srlab reprotect ${n})`,
    [S.REPLICATION_STATE_FAILOVER_COMMITTED]: `running in Azure after a committed failover and not replicating anywhere: reprotect it to on-premises first (srlab reprotect ${n})`,
    [S.REPLICATION_STATE_REPROTECTING]: "being reprotected: wait for the reprotect job to finish",
    [S.REPLICATION_STATE_FAILBACK_IN_PROGRESS]: "failing back already",
    [S.REPLICATION_STATE_FAILED_BACK]: `failed back to on-premises already: commit the failback (srlab commit ${n})`,
  };
  const replicating = back ? "replicating from Azure to on-premises" : "replicating from on-premises to Azure";
  const state = where[machine.state] ?? `${stateName(machine.state)}, ${replicating}`;
  const next = back || where[machine.state] ? "" : `; failback needs a machine running in Azure and reprotected to on-premises (srlab failover ${n}, srlab commit ${n}, srlab reprotect ${n})`;
  return `machine ${n} is ${state}${next}`;
}
