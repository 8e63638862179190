import { jobTypes } from "../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { failoverDiskName, machinePrefix, replicaBlobName } from "../common/storage-layout/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { type Component, ComponentRole, type Job, JobState, JobType, type Machine, type MachineHandover, ReleaseMode, ReplicationDirection, ReplicationState, SiteLocation } from "../proto/index.js";
import type { CommandBus, CommandOutcome } from "./command-bus.js";
import { expectSuccess, resultOf } from "./command-outcome.js";
import { JobRunner } from "./job-runner.js";
import type { MachineReports } from "./machine-health.js";
import { stateName } from "./protection-jobs.js";
import type { ConfigStore } from "./store/index.js";

export interface MachineOperationsContext {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  blobs: BlobStore;
  /** The latest per-machine reports (a process server that let a machine go no longer counts). */
  reports: Map<string, MachineReports>;
  /** Sends the machine's current assignment to its agent and process server (ProtectionJobs). */
  sendAssignment(jobId: string, machineId: string): Promise<void>;
  /** How long the new process server may take to hear from the agent after a switch. */
  stepTimeoutMs: number;
  /** How long a component may take to answer a command. */
  commandTimeoutMs: number;
}

const STEPS = {
  prerequisites: "Prerequisites check",
  stop: "Stop replication",
  remove: "Remove from process server",
  delete: "Delete replica",
  drain: "Drain source process server",
  adopt: "Hand over to target process server",
  redirect: "Redirect agent",
  resume: "Resume replication",
} as const;

/** States in which a machine replicates from on-premises to Azure (and may be disabled). */
const DISABLEABLE = [
  ReplicationState.REPLICATION_STATE_ENABLING_PROTECTION,
  ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION,
  ReplicationState.REPLICATION_STATE_FINALIZING_PROTECTION,
  ReplicationState.REPLICATION_STATE_PROTECTED,
  ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
  ReplicationState.REPLICATION_STATE_RESYNCING,
];

/**
 * Operating protected machines (issue 12): disabling protection and moving a machine to another
 * process server (ASR's process-server load balancing). Both are jobs with steps.
 */
export class MachineOperations {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: MachineOperationsContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  /**
   * Stops replicating a machine: the agent stops capturing (it keeps serving its disks), the
   * process server forgets the machine, and the machine's storage is deleted unless kept.
   */
  disableProtection(machineRef: string, keepReplica: boolean): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (!DISABLEABLE.includes(machine.state) || machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${machine.name} is ${stateName(machine.state)}; disable protection needs a machine replicating to Azure (commit or clean up a failover first)`,
      );
    }
    if (!bus.isConnected(machine.agentComponentId)) {
      throw new SrlabError(ErrorCode.UNAVAILABLE, `the agent of ${machine.name} is not connected to the configuration server; start it first, so it stops capturing`);
    }
    const ps = machine.processServerId ? store.getComponent(machine.processServerId) : undefined;
    if (ps && !bus.isConnected(ps.componentId)) {
      throw new SrlabError(ErrorCode.UNAVAILABLE, `process server ${ps.name} of ${machine.name} is not connected; start it first, so it lets the machine go`);
    }
    const active = store.listJobs(machine.machineId).find((j) => isActive(j.state) && j.type !== JobType.JOB_TYPE_WORKLOAD);
    if (active) throw new SrlabError(ErrorCode.WRONG_STATE, `job ${active.jobId} (${jobTypes.name(active.type)}) of ${machine.name} is still running; wait for it first`);
    const job = store.createJob({
      type: JobType.JOB_TYPE_DISABLE_PROTECTION,
      machineId: machine.machineId,
      steps: [STEPS.stop, STEPS.remove, STEPS.delete],
    });
    this.runner.run(job, async () => {
      const stopped = await this.runner.step(job, STEPS.stop, async () => {
        const r = resultOf(await this.command(machine.agentComponentId, job.jobId, { $case: "unprotect", value: { machineId: machine.machineId } }), "unprotect", "stop on the agent");
        return `${r.droppedRecords} queued writes dropped; the agent keeps serving its disks`;
      });
      const released = await this.runner.step(job, STEPS.remove, async () => {
        if (!ps) return "no process server was assigned";
        // Kept storage must hold everything that was acknowledged, so drain it first.
        const mode = keepReplica ? ReleaseMode.RELEASE_MODE_HANDOVER : ReleaseMode.RELEASE_MODE_DISCARD;
        expectSuccess(
          await this.command(ps.componentId, job.jobId, { $case: "releaseMachine", value: { machineId: machine.machineId, mode } }),
          `release on process server ${ps.name}`,
        );
        return `process server ${ps.name} no longer replicates ${machine.name}`;
      });
      store.updateMachine(machine.machineId, {
        state: ReplicationState.REPLICATION_STATE_UNPROTECTED,
        processServerId: "",
        stats: undefined,
        resyncRequired: false,
        resyncReason: "",
        issues: [],
      });
      const reports = this.ctx.reports.get(machine.machineId);
      if (reports) reports.processServer = undefined;
      let deleted = { objects: 0, pageBlobs: 0, points: 0 };
      if (keepReplica) {
        store.updateJobStep(job.jobId, STEPS.delete, { state: JobState.JOB_STATE_SKIPPED, progressPercent: 0, message: "kept (--keep-replica)" });
      } else {
        await this.runner.step(job, STEPS.delete, async () => {
          deleted = await this.deleteStorage(machine);
          return `${deleted.pageBlobs} page blobs, ${deleted.objects} objects and ${deleted.points} recovery points deleted`;
        });
      }
      this.ctx.logger.info("protection disabled", { machine: machine.name, keepReplica, ...deleted });
      return { kind: { $case: "disableProtection", value: { machine: machine.name, stopped, released, keepReplica, deleted } } };
    });
    return job;
  }

  /**
   * Moves a protected machine to another on-premises process server without a resync. The old
   * one closes the agent's stream and refuses it (the agent keeps everything unacknowledged
   * queued), uploads and applies everything it holds, and hands the machine's facts over; the
   * new one continues the stream after the last uploaded sequence; then the agent is pointed at
   * it and resends what was never acknowledged. If anything fails before the agent is
   * redirected, the old process server takes the machine back.
   */
  switchProcessServer(machineRef: string, processServerRef: string): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED || machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; switching process servers needs a protected machine replicating to Azure`);
    }
    const from = store.getComponent(machine.processServerId);
    if (!from) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no process server assigned`);
    const to = this.requireProcessServer(processServerRef);
    if (to.componentId === from.componentId) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `machine ${machine.name} already replicates through ${to.name}`);
    if (to.location !== SiteLocation.SITE_LOCATION_ON_PREMISES) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `process server ${to.name} runs in Azure; a machine replicating to Azure needs an on-premises process server`);
    }
    for (const c of [from, to]) {
      if (!bus.isConnected(c.componentId)) throw new SrlabError(ErrorCode.UNAVAILABLE, `process server ${c.name} is not connected to the configuration server`);
    }
    if (!bus.isConnected(machine.agentComponentId)) throw new SrlabError(ErrorCode.UNAVAILABLE, `the agent of ${machine.name} is not connected to the configuration server`);
    const active = store.listJobs(machine.machineId).find((j) => isActive(j.state) && j.type !== JobType.JOB_TYPE_WORKLOAD);
    if (active) throw new SrlabError(ErrorCode.WRONG_STATE, `job ${active.jobId} (${jobTypes.name(active.type)}) of ${machine.name} is still running; wait for it first`);

    const job = store.createJob({
      type: JobType.JOB_TYPE_SWITCH_PROCESS_SERVER,
      machineId: machine.machineId,
      steps: [STEPS.drain, STEPS.adopt, STEPS.redirect, STEPS.resume],
    });
    let handover: MachineHandover | undefined;
    let redirected = false;
    this.runner.run(
      job,
      async () => {
        await this.runner.step(job, STEPS.drain, async () => {
          const r = resultOf(
            await this.command(from.componentId, job.jobId, {
              $case: "releaseMachine",
              value: { machineId: machine.machineId, mode: ReleaseMode.RELEASE_MODE_HANDOVER },
            }),
            "releaseMachine",
            `drain on process server ${from.name}`,
          );
          if (!r.handover) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `process server ${from.name} did not hand over machine ${machine.name}`);
          handover = r.handover;
          return `${from.name} uploaded and applied everything through sequence ${handover.uploadedSequence}`;
        });
        const h = handover!;
        await this.runner.step(job, STEPS.adopt, async () => {
          expectSuccess(await this.command(to.componentId, job.jobId, { $case: "adoptMachine", value: { handover: h } }), `adoption on process server ${to.name}`);
          return `${to.name} continues after sequence ${h.uploadedSequence}`;
        });
        await this.runner.step(job, STEPS.redirect, async () => {
          store.updateMachine(machine.machineId, { processServerId: to.componentId });
          redirected = true;
          const reports = this.ctx.reports.get(machine.machineId);
          if (reports) reports.processServer = undefined;
          await this.ctx.sendAssignment(job.jobId, machine.machineId);
          return `agent of ${machine.name} replicates to ${to.name} (${to.address})`;
        });
        const since = Date.now();
        await this.runner.step(job, STEPS.resume, async () => {
          await this.runner.waitFor(`process server ${to.name} to report ${machine.name}`, this.ctx.stepTimeoutMs, () => {
            const report = this.ctx.reports.get(machine.machineId)?.processServer;
            return report && report.at >= since && (report.report.stats?.receivedSequence ?? 0) >= h.uploadedSequence ? true : undefined;
          });
          return `${to.name} receives the stream`;
        });
        this.ctx.logger.info("machine switched process server", { machine: machine.name, from: from.name, to: to.name, continuesAfter: h.uploadedSequence });
        return {
          kind: {
            $case: "switchProcessServer",
            value: { machine: machine.name, fromProcessServer: from.name, toProcessServer: to.name, continuedAfterSequence: h.uploadedSequence },
          },
        };
      },
      () => {
        // Before the agent moved, the old process server takes the machine back as it gave it.
        if (!handover || redirected) return;
        const back = handover;
        void (async () => {
          const r = await this.command(from.componentId, job.jobId, { $case: "adoptMachine", value: { handover: back } });
          if (!r.success) throw new Error(r.error);
          await this.ctx.sendAssignment(job.jobId, machine.machineId);
          this.ctx.logger.warn("switch failed; machine stays on its process server", { machine: machine.name, processServer: from.name });
        })().catch((err: unknown) =>
          this.ctx.logger.error("switch failed and the machine could not be handed back; run srlab resync", { machine: machine.name, error: (err as Error).message }),
        );
      },
    );
    return job;
  }

  /** Every blob of the machine: objects (segments, points, state) and its page blobs with their snapshots. */
  private async deleteStorage(machine: Machine): Promise<{ objects: number; pageBlobs: number; points: number }> {
    const { blobs, store } = this.ctx;
    const objects = await blobs.listObjects(machinePrefix(machine.machineId));
    for (const o of objects) await blobs.deleteObject(o.name);
    // Page blobs are not listed with objects: they are named by disk index (never reused).
    const highest = Math.max(0, ...machine.disks.map((d) => d.index), ...machine.azureDisks.map((d) => d.index));
    let pageBlobs = 0;
    for (let index = 0; index <= highest + 1; index++) {
      for (const name of [replicaBlobName(machine.machineId, index), failoverDiskName(machine.machineId, index), failoverDiskName(machine.machineId, index, true)]) {
        if ((await blobs.pageBlobSize(name)) === undefined) continue;
        await blobs.deletePageBlob(name);
        pageBlobs++;
      }
    }
    const points = store.deleteRecoveryPoints(machine.machineId, []).length;
    return { objects: objects.length, pageBlobs, points };
  }

  private command(componentId: string, jobId: string, body: Parameters<CommandBus["send"]>[2]): Promise<CommandOutcome> {
    return this.ctx.bus.sendWithin(componentId, jobId, body, this.ctx.commandTimeoutMs);
  }

  private requireMachine(ref: string): Machine {
    const machine = this.ctx.store.getMachine(ref);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
    return machine;
  }

  private requireProcessServer(ref: string): Component {
    const { store } = this.ctx;
    const ps = store.findComponentByName(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, ref) ?? store.getComponent(ref);
    if (!ps || ps.role !== ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
      throw new SrlabError(ErrorCode.NOT_FOUND, `no process server named "${ref}" (see srlab status)`);
    }
    return ps;
  }
}

function isActive(state: JobState): boolean {
  return state === JobState.JOB_STATE_IN_PROGRESS || state === JobState.JOB_STATE_NOT_STARTED;
}

/** The configuration server's hook: MachineOperations over its store, bus, storage and protection jobs. */
export function machineOperations(deps: {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  blobs: BlobStore;
  reports: Map<string, MachineReports>;
  jobs: { sendAssignment(jobId: string, machineId: string): Promise<void> };
}): MachineOperations {
  return new MachineOperations({
    ...deps,
    sendAssignment: (jobId, machineId) => deps.jobs.sendAssignment(jobId, machineId),
    stepTimeoutMs: 600_000,
    commandTimeoutMs: 600_000,
  });
}
