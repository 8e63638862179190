import { type Component, ComponentRole, type Disk, type Job, JobType, type Machine, type RecoveryPoint, type RecoveryPointSelector, RecoveryPointType, ReplicationDirection, ReplicationState, SiteLocation, SyncMode, TagPhase, type TargetDisk } from "../proto/index.js";
import { namedRecoveryPoints } from "../common/enum-names/index.js";
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
  restore: "Roll back to the recovery point",
  switchDisks: "Switch the on-premises machine to the new disks",
  start: "Start the on-premises machine",
  remove: "Remove the Azure machine",
} as const;

/** How often the app-consistent schedule of the way back looks at the machines. */
const APP_SCHEDULE_TICK_MS = 1_000;

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
        const sync = await this.runner.step(job, STEPS.resync, async () =>
          expectSuccess(
            await this.ctx.bus.send(machine.azureAgentComponentId, job.jobId, {
              $case: "startSync",
              value: { machineId: machine.machineId, mode: SyncMode.SYNC_MODE_RESYNC, blockSize: this.ctx.syncBlockBytes, diskIndexes: [] },
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

  failback(machineRef: string, selector?: RecoveryPointSelector): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED || machine.direction !== ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
      throw new SrlabError(ErrorCode.WRONG_STATE, failbackRefusal(machine));
    }
    const ps = store.getComponent(machine.processServerId);
    if (!ps) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `machine ${machine.name} has no process server in Azure assigned`);
    const point = this.choosePoint(machine, selector);
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
        let restored: Record<string, unknown> = {};
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
        return { lastSequence, processedSequence: processed, ...restored, rtoSeconds: (Date.now() - requestedAt) / 1000, achievedRpoSeconds: rpo };
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
      return { removedDisks: removed };
    });
    return job;
  }

  /**
   * The failback policy's app-consistent points on the way back: a tag in the Azure machine's
   * stream every appConsistentFrequencySeconds (the master target snapshots at the tag). Returns
   * the stop function.
   */
  startAppConsistentSchedule(): () => void {
    const { store, bus, logger } = this.ctx;
    const lastTag = new Map<string, number>();
    const timer = setInterval(() => {
      const now = Date.now();
      const policy = store.getPolicy(FAILBACK_POLICY_NAME);
      const every = (policy?.appConsistentFrequencySeconds ?? 0) * 1000;
      for (const m of store.listMachines()) {
        const reverse =
          m.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && m.state === ReplicationState.REPLICATION_STATE_PROTECTED;
        if (!reverse || every <= 0) {
          lastTag.delete(m.machineId);
          continue;
        }
        const since = lastTag.get(m.machineId);
        if (since === undefined) {
          lastTag.set(m.machineId, now); // the first tag one period after replication back began
          continue;
        }
        if (now - since < every || !bus.isConnected(m.azureAgentComponentId)) continue;
        lastTag.set(m.machineId, now);
        const tagName = `failback-${new Date(now).toISOString().replace(/[:.]/g, "-")}`;
        bus
          .send(m.azureAgentComponentId, "", {
            $case: "insertTag",
            value: { machineId: m.machineId, tagName, consistencyGroup: "", phase: TagPhase.TAG_PHASE_UNSPECIFIED, holdTimeoutMs: 0 },
          })
          .then((o) => {
            if (!o.success) logger.warn("scheduled app-consistent tag failed", { machine: m.name, error: o.error });
          })
          .catch((err: unknown) => logger.warn("scheduled app-consistent tag failed", { machine: m.name, error: (err as Error).message }));
      }
    }, APP_SCHEDULE_TICK_MS);
    timer.unref();
    return () => clearInterval(timer);
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

  /**
   * The point a failback goes to: none for "latest" (everything the Azure machine wrote), else a
   * point of the way back. Resolved before anything stops, so a bad choice changes nothing.
   */
  private choosePoint(machine: Machine, selector: RecoveryPointSelector | undefined): RecoveryPoint | undefined {
    const s = selector?.selector;
    const named = s?.$case === "named" ? namedRecoveryPoints.name(s.value) : undefined;
    if (!s || named === "latest") return undefined;
    const back = this.ctx.store
      .listRecoveryPoints(machine.machineId)
      .filter((p) => p.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES);
    if (s.$case === "named") {
      if (named !== "latest-app-consistent") {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `failback goes to latest, latest-app-consistent or a point id of the way back, not "${named}"`);
      }
      const app = back.filter((p) => p.type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT).at(-1);
      if (!app) {
        throw new SrlabError(
          ErrorCode.NOT_FOUND,
          `machine ${machine.name} has no app-consistent point of the way back yet: tag it (srlab tag ${machine.name}) or wait for the failback policy's next one`,
        );
      }
      return app;
    }
    if (s.$case === "recoveryPointId") {
      const p = back.find((x) => x.recoveryPointId === s.value);
      if (!p) {
        throw new SrlabError(
          ErrorCode.NOT_FOUND,
          `no recovery point ${s.value} of the way back for ${machine.name} (srlab points ${machine.name} lists them; direction "failback")`,
        );
      }
      return p;
    }
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "failback goes to a recovery point of the way back (--point), not to a sequence or a time");
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
  private async switchDisks(jobId: string, machine: Machine, targets: TargetDisk[]): Promise<Record<string, unknown>> {
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
