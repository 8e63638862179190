import { type Component, ComponentRole, type Disk, type Job, JobType, type Machine, type RecoveryPointSelector, ReplicationDirection, ReplicationState, SiteLocation, type SwitchDisksResult, SyncMode, type TargetDisk } from "../proto/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { unaryCall } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { BlobStore } from "../common/storage/index.js";
import type { CommandBus } from "./command-bus.js";
import { expectSuccess, resultOf } from "./command-outcome.js";
import { type ComponentAccess, withMasterTarget, withProcessServer } from "./component-clients.js";
import { chooseFailbackPoint, failbackRefusal } from "./failback-point.js";
import { startFailbackTagSchedule } from "./failback-schedule.js";
import { JobRunner } from "./job-runner.js";
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
  restore: "Roll back to the recovery point",
  switchDisks: "Switch the on-premises machine to the new disks",
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
      type: JobType.JOB_TYPE_REPROTECT_TO_ON_PREMISES,
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
          store.setSetting(targetSetting(machine.machineId), JSON.stringify({ alternateLocation: o.alternateLocation, disks: targets.disks }));
          await this.assignReverse(job.jobId, machine.machineId, ps, mt);
        });
        const counts = await this.runner.step(job, STEPS.resync, async () =>
          resultOf(
            await this.ctx.bus.send(machine.azureAgentComponentId, job.jobId, {
              $case: "startSync",
              value: { machineId: machine.machineId, mode: SyncMode.SYNC_MODE_RESYNC, blockSize: this.ctx.syncBlockBytes, diskIndexes: [] },
            }),
            "startSync",
            "resync from Azure",
          ),
        );
        await this.runner.step(job, STEPS.finalize, () => this.waitProcessed(machine.machineId, counts.endSequence));
        store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_PROTECTED });
        return { kind: { $case: "reprotect", value: { sync: counts, masterTarget: mt.name, processServer: ps.name, targetDisks: targets.disks } } };
      },
      () => store.updateMachine(machine.machineId, { state: previous }),
    );
    return job;
  }

  failback(machineRef: string, selector?: RecoveryPointSelector): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED || machine.direction !== ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
      throw new SrlabError(ErrorCode.WRONG_STATE, failbackRefusal(machine));
    }
    const ps = store.getComponent(machine.processServerId);
    if (!ps) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no process server in Azure assigned`);
    const point = chooseFailbackPoint(this.ctx.store, machine, selector);
    const mt = point ? this.masterTargetOf(machine) : undefined;
    const target = this.targetOf(machine.machineId);
    const steps: string[] = [STEPS.prerequisites, STEPS.shutdown, STEPS.apply];
    if (point) steps.push(STEPS.restore);
    if (target?.alternateLocation) steps.push(STEPS.switchDisks);
    steps.push(STEPS.start);
    const job = store.createJob({ type: JobType.JOB_TYPE_FAILBACK, machineId: machine.machineId, steps });
    const requestedAt = Date.now();
    store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILBACK_IN_PROGRESS });
    this.runner.run(
      job,
      async () => {
        await this.runner.step(job, STEPS.prerequisites, async () => "");
        // Planned failover: the Azure machine must stop and drain, or nothing happens.
        const stopped = await this.runner.step(job, STEPS.shutdown, async () =>
          resultOf(
            await bus.send(machine.azureAgentComponentId, job.jobId, { $case: "stopWrites", value: { machineId: machine.machineId, drain: true } }),
            "stopWrites",
            "shutting down the Azure machine",
          ),
        );
        const lastSequence = stopped.lastSequence;
        const drained = await this.runner.step(job, STEPS.apply, () =>
          withProcessServer(this.ctx, ps.address, (c) =>
            unaryCall(c, c.drainMachine, { machineId: machine.machineId, apply: true }, this.ctx.credential, 600_000),
          ),
        );
        const processed = drained.stats?.processedSequence ?? 0;
        if (processed < lastSequence) {
          throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `the master target applied through ${processed} but the Azure machine wrote through ${lastSequence}`);
        }
        let restored = { recoveryPointId: "", pointSequence: 0, blocksRestored: 0 };
        if (point && mt) {
          restored = await this.runner.step(job, STEPS.restore, async () => {
            const r = await withMasterTarget(this.ctx, mt.address, (c) =>
              unaryCall(c, c.restorePoint, { machineId: machine.machineId, pointId: point.recoveryPointId }, this.ctx.credential, 600_000),
            );
            return { recoveryPointId: point.recoveryPointId, pointSequence: point.sequence, blocksRestored: r.blocksRestored };
          });
        }
        if (target?.alternateLocation) {
          await this.runner.step(job, STEPS.switchDisks, () => this.switchDisks(job.jobId, machine, target.disks));
        }
        await this.runner.step(job, STEPS.start, async () => {
          const resumed = await bus.send(machine.agentComponentId, job.jobId, { $case: "resumeWrites", value: { machineId: machine.machineId } });
          return resumed.success ? "on-premises machine writes again" : `on-premises agent did not resume: ${resumed.error}`;
        });
        store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILED_BACK });
        // Going back to a point gives up what the Azure machine wrote after it.
        const rpo = point?.time ? Math.max(0, (requestedAt - point.time.getTime()) / 1000) : 0;
        const rtoSeconds = (Date.now() - requestedAt) / 1000;
        return { kind: { $case: "failback", value: { lastSequence, processedSequence: processed, ...restored, rtoSeconds, achievedRpoSeconds: rpo } } };
      },
      () => store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_PROTECTED }),
    );
    return job;
  }

  /** Commit after failback: the Azure machine and its disks go; the machine is on-premises again. */
  commitFailback(machine: Machine): Job {
    const { store, blobs } = this.ctx;
    const job = store.createJob({ type: JobType.JOB_TYPE_COMMIT_FAILBACK, machineId: machine.machineId, steps: [STEPS.remove] });
    this.runner.run(job, async () => {
      const removed = await this.runner.step(job, STEPS.remove, async () => {
        const names = (machine.failover?.disks ?? machine.azureDisks).map((d) => d.blobName).filter(Boolean);
        for (const name of names) await blobs.deletePageBlob(name);
        const ps = store.getComponent(machine.processServerId);
        if (ps) this.dropFromProcessServer(machine.machineId, ps);
        // The points of the way back were snapshots of the master target's images: done with.
        const forward = store.listRecoveryPoints(machine.machineId).filter((p) => p.direction !== ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES);
        store.deleteRecoveryPoints(machine.machineId, forward.map((p) => p.recoveryPointId));
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
      return { kind: { $case: "commitFailback", value: { removedDisks: removed } } };
    });
    return job;
  }

  /** Starts the failback policy's app-consistent tags on the way back; returns the stop function. */
  startAppConsistentSchedule(): () => void {
    return startFailbackTagSchedule(this.ctx);
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


  private masterTargetOf(machine: Machine): Component {
    const id = this.ctx.store.getSetting(masterTargetSetting(machine.machineId));
    const mt = id ? this.ctx.store.getComponent(id) : undefined;
    if (!mt) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no master target recorded; reprotect it again`);
    return mt;
  }

  private targetOf(machineId: string): { alternateLocation: boolean; disks: TargetDisk[] } | undefined {
    const raw = this.ctx.store.getSetting(targetSetting(machineId));
    return raw ? (JSON.parse(raw) as { alternateLocation: boolean; disks: TargetDisk[] }) : undefined;
  }

  /** The on-premises agent serves the alternate-location images from now on; the old ones stay as they are. */
  private async switchDisks(jobId: string, machine: Machine, targets: TargetDisk[]): Promise<SwitchDisksResult> {
    const { store, bus } = this.ctx;
    const current = store.getMachine(machine.machineId)!;
    const disks: Disk[] = current.disks.map((d) => {
      const t = targets.find((x) => x.diskIndex === d.index);
      return t ? { ...d, imagePath: t.imagePath } : d;
    });
    expectSuccess(
      await bus.send(current.agentComponentId, jobId, { $case: "switchDisks", value: { machineId: machine.machineId, disks } }),
      "switching the on-premises agent to the new disks",
    );
    store.setMachineDisks(machine.machineId, disks);
    return { disks: disks.map((d) => ({ index: d.index, imagePath: d.imagePath })) };
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

/** The target disks the reprotect prepared (and whether they are at an alternate location). */
function targetSetting(machineId: string): string {
  return `failback-target:${machineId}`;
}
