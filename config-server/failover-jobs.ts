import { type Disk, type FailoverInfo, type Job, type JobResult, JobType, type Machine, type RecoverableRange, type RecoveryPointSelector, ReplicationState } from "../proto/index.js";
import { failoverDiskName } from "../common/storage-layout/index.js";
import { namedRecoveryPoints } from "../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { answeredResult } from "./command-outcome.js";
import { unaryCall } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import { describeRange, type RecoverableRange as EngineRange, type RecoveryEngine, type RecoveryTarget, } from "../common/recovery/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { finishFixedVhdBlob, vhdVirtualSize } from "../common/vhd/index.js";
import type { CommandBus } from "./command-bus.js";
import { type ComponentAccess, withProcessServer } from "./component-clients.js";
import { proofsFromAgent } from "./agent-proofs.js";
import { failoverPlacement } from "./failover-placement.js";
import { ReplayEstimator } from "./failover-replay.js";
import { JobRunner } from "./job-runner.js";
import { stateName } from "./protection-jobs.js";
import type { ConfigStore } from "./store/index.js";

export interface FailoverContext extends ComponentAccess {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  blobs: BlobStore;
  engine: RecoveryEngine;
  /** How long the source gets to stop and drain before failover goes on without it. */
  sourceShutdownTimeoutMs: number;
}

const STEPS = {
  prerequisites: "Prerequisites check",
  shutdown: "Shut down source machine",
  drain: "Process pending data",
  disks: "Create failed-over disks",
  complete: "Complete failover",
  cleanup: "Delete test machine",
  commit: "Delete other recovery points",
} as const;

const CAN_FAIL_OVER = new Set([
  ReplicationState.REPLICATION_STATE_PROTECTED,
  ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
  ReplicationState.REPLICATION_STATE_RESYNCING,
]);

/** RecoveryPointSelector (wire) → the engine's target. */
export function toRecoveryTarget(selector: RecoveryPointSelector | undefined): RecoveryTarget {
  const s = selector?.selector;
  switch (s?.$case) {
    case "recoveryPointId":
      return { kind: "point", pointId: s.value };
    case "sequence":
      return { kind: "sequence", sequence: s.value };
    case "time":
      return { kind: "time", at: s.value };
    case "named":
      return { kind: namedRecoveryPoints.name(s.value) };
    case undefined:
      return { kind: "latest" };
  }
}

/**
 * Failover, test failover, change of recovery point and commit (DESIGN.md §1 Failover). The
 * failed-over disks are built from storage alone — a recovery point's snapshots plus the log
 * segments after it — so failover works while the process server is down.
 */
export class FailoverJobs {
  private readonly runner: JobRunner;
  private readonly replay: ReplayEstimator;

  constructor(private readonly ctx: FailoverContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
    this.replay = new ReplayEstimator(ctx.blobs);
  }

  failover(machineRef: string, o: { selector?: RecoveryPointSelector; test: boolean; shutdownSource: boolean; network: string }): Job {
    const { store } = this.ctx;
    const requestedAt = new Date();
    const machine = this.requireMachine(machineRef);
    const target = toRecoveryTarget(o.selector);
    if (o.test) {
      if (machine.testFailover) {
        throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} already has a test failover; clean it up first (srlab failover-cleanup ${machine.name})`);
      }
    } else if (!CAN_FAIL_OVER.has(machine.state)) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; failover needs a protected machine`);
    }
    if (o.test && !CAN_FAIL_OVER.has(machine.state)) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; test failover needs a protected machine`);
    }
    const placement = failoverPlacement(this.ctx.store, machine, o.network, o.test);
    const drain = target.kind === "latest";
    const steps = [
      STEPS.prerequisites,
      ...(o.shutdownSource && !o.test ? [STEPS.shutdown] : []),
      ...(drain ? [STEPS.drain] : []),
      STEPS.disks,
      STEPS.complete,
    ];
    const job = store.createJob({ type: o.test ? JobType.JOB_TYPE_TEST_FAILOVER : JobType.JOB_TYPE_FAILOVER, machineId: machine.machineId, steps });
    if (!o.test) store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILOVER_IN_PROGRESS });
    const notes: string[] = [];
    this.runner.run(
      job,
      async () => {
        await this.runner.step(job, STEPS.prerequisites, async () => `network ${placement.network || "(default)"}${placement.ip ? `, IP ${placement.ip}` : ""}`);
        if (o.shutdownSource && !o.test) {
          notes.push(await this.runner.step(job, STEPS.shutdown, () => this.shutDownSource(machine)));
        }
        if (drain) notes.push(await this.runner.step(job, STEPS.drain, () => this.drain(machine)));
        const info = await this.runner.step(job, STEPS.disks, () => this.buildDisks(job, machine, target, o.test, requestedAt));
        info.network = placement.network;
        info.ipAddress = placement.ip;
        info.description = [info.description, ...notes.filter(Boolean)].join("; ");
        await this.runner.step(job, STEPS.complete, async () => {
          if (o.test) {
            store.updateMachine(machine.machineId, { testFailover: info, testFailoverActive: true });
          } else {
            store.updateMachine(machine.machineId, {
              state: ReplicationState.REPLICATION_STATE_FAILED_OVER,
              failover: info,
              azureDisks: info.disks,
            });
            this.stopPointsOnProcessServer(machine);
          }
        });
        return failoverResult(info);
      },
      () => {
        if (!o.test) store.updateMachine(machine.machineId, { state: machine.state });
      },
    );
    return job;
  }

  /** What `--seq`/`--at` can reach, from storage; undefined (and logged) when storage cannot be read. */
  async recoverableRange(machineId: string): Promise<RecoverableRange | undefined> {
    let range: EngineRange;
    try {
      range = await this.ctx.engine.range(machineId);
    } catch (err) {
      this.ctx.logger.warn("cannot read the recoverable range from storage", { machineId, error: (err as Error).message });
      return undefined;
    }
    return {
      available: range.oldest !== undefined,
      firstSequence: range.oldest?.sequence ?? 0,
      firstTime: range.oldest ? new Date(range.oldest.time) : undefined,
      lastSequence: range.lastSequence,
      fromBase: range.oldest?.base ?? false,
      prunedAt: range.pruned ? new Date(range.pruned.prunedAt) : undefined,
      prunedThroughSequence: range.pruned?.prunedThroughSequence ?? 0,
      retentionSeconds: range.pruned?.retentionSeconds ?? 0,
      description: describeRange(range),
    };
  }

  changeRecoveryPoint(machineRef: string, selector: RecoveryPointSelector | undefined): Job {
    const { store } = this.ctx;
    const requestedAt = new Date();
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_FAILED_OVER || !machine.failover) {
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${machine.name} is ${stateName(machine.state)}; change-point needs a failed-over machine that is not committed yet`,
      );
    }
    const target = toRecoveryTarget(selector);
    const previous = machine.failover;
    const job = store.createJob({ type: JobType.JOB_TYPE_CHANGE_RECOVERY_POINT, machineId: machine.machineId, steps: [STEPS.disks, STEPS.complete] });
    this.runner.run(job, async () => {
      const info = await this.runner.step(job, STEPS.disks, () => this.buildDisks(job, machine, target, false, requestedAt));
      info.network = previous.network;
      info.ipAddress = previous.ipAddress;
      await this.runner.step(job, STEPS.complete, async () => {
        store.updateMachine(machine.machineId, { failover: info, azureDisks: info.disks });
      });
      return failoverResult(info);
    });
    return job;
  }

  commit(machineRef: string): Job {
    const { store, engine } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (machine.state !== ReplicationState.REPLICATION_STATE_FAILED_OVER || !machine.failover) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; commit needs a failed-over machine`);
    }
    const keep = machine.failover.recoveryPointId ? [machine.failover.recoveryPointId] : [];
    const job = store.createJob({ type: JobType.JOB_TYPE_COMMIT_FAILOVER, machineId: machine.machineId, steps: [STEPS.commit, STEPS.complete] });
    this.runner.run(job, async () => {
      const deleted = await this.runner.step(job, STEPS.commit, async () => {
        const removed = await engine.deletePoints(machine.machineId, keep);
        store.deleteRecoveryPoints(machine.machineId, keep);
        return removed;
      });
      await this.runner.step(job, STEPS.complete, async () => {
        store.updateMachine(machine.machineId, { state: ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED });
      });
      return { kind: { $case: "commitFailover", value: { deletedRecoveryPoints: deleted.length, kept: keep } } };
    });
    return job;
  }

  cleanupTestFailover(machineRef: string): Job {
    const { store, blobs } = this.ctx;
    const machine = this.requireMachine(machineRef);
    if (!machine.testFailover) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} has no test failover to clean up`);
    }
    const test = machine.testFailover;
    const job = store.createJob({ type: JobType.JOB_TYPE_TEST_FAILOVER_CLEANUP, machineId: machine.machineId, steps: [STEPS.cleanup] });
    this.runner.run(job, async () => {
      await this.runner.step(job, STEPS.cleanup, async () => {
        for (const d of test.disks) await blobs.deletePageBlob(d.blobName);
        store.updateMachine(machine.machineId, { testFailover: undefined, testFailoverActive: false });
      });
      return { kind: { $case: "testFailoverCleanup", value: { deletedDisks: test.disks.map((d) => d.blobName) } } };
    });
    return job;
  }


  /** Stops the source's writes and drains them to storage; failover goes on if that fails. */
  private async shutDownSource(machine: Machine): Promise<string> {
    const outcome = await Promise.race([
      this.ctx.bus.send(machine.agentComponentId, "", { $case: "stopWrites", value: { machineId: machine.machineId, drain: true } }),
      new Promise<undefined>((resolve) => {
        setTimeout(() => resolve(undefined), this.ctx.sourceShutdownTimeoutMs).unref();
      }),
    ]);
    if (!outcome) return `source machine did not answer within ${Math.round(this.ctx.sourceShutdownTimeoutMs / 1000)} s; failover went on without shutting it down`;
    if (!outcome.success) return `source machine could not be shut down (${outcome.error}); failover went on`;
    const stopped = answeredResult(outcome, "stopWrites");
    if (!stopped) return "source machine stopped its writes without saying where; failover went on";
    // The source's final state: what a planned failover must reproduce (srlab verify --failed-over).
    this.ctx.store.addProofs(machine.machineId, stopped.lastSequence, proofsFromAgent(stopped.proofs));
    return `source machine shut down at sequence ${stopped.lastSequence}`;
  }

  /** Asks the process server to upload everything it received; without it, storage is what counts. */
  private async drain(machine: Machine): Promise<string> {
    const ps = this.ctx.store.getComponent(machine.processServerId);
    if (!ps) return "no process server assigned; using what storage holds";
    try {
      const res = await withProcessServer(this.ctx, ps.address, (c) =>
        unaryCall(c, c.drainMachine, { machineId: machine.machineId, apply: false }, this.ctx.credential, 120_000),
      );
      return `process server ${ps.name} uploaded through sequence ${res.stats?.uploadedSequence ?? 0}`;
    } catch (err) {
      return `process server ${ps.name} unreachable (${(err as Error).message.split("\n")[0]}); using what storage holds`;
    }
  }

  private async buildDisks(job: Job, machine: Machine, target: RecoveryTarget, test: boolean, requestedAt: Date): Promise<FailoverInfo> {
    const { engine } = this.ctx;
    const resolved = await engine.resolve(machine.machineId, target);
    const estimate = await this.replay.estimate(resolved);
    if (estimate) this.runner.progress(job, STEPS.disks, 0, estimate);
    const replayStarted = Date.now();
    const result = await engine.materialize(
      machine.machineId,
      machine.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes })),
      resolved,
      (i) => failoverDiskName(machine.machineId, i, test),
      (p) => this.runner.progress(job, STEPS.disks, p.total ? (100 * p.done) / p.total : 0, p.phase),
    );
    // Azure creates managed disks from page blobs holding a fixed VHD: footer after a whole-MiB disk.
    const vhdBytes = new Map<number, number>();
    for (const d of result.disks) {
      const source = machine.disks.find((s) => s.index === d.index);
      const raw = source?.sizeBytes || ((await this.ctx.blobs.pageBlobSize(d.blob)) ?? 0);
      await finishFixedVhdBlob(this.ctx.blobs, d.blob, raw);
      vhdBytes.set(d.index, vhdVirtualSize(raw));
    }
    const completedAt = new Date();
    if (resolved.replaySegments.length) this.replay.note(resolved.replaySegments, (completedAt.getTime() - replayStarted) / 1000);
    const disks: Disk[] = result.disks.map((d) => {
      const source = machine.disks.find((s) => s.index === d.index);
      return {
        diskId: `${machine.name}-${test ? "test" : "azure"}-disk${d.index}`,
        index: d.index,
        sizeBytes: vhdBytes.get(d.index) ?? source?.sizeBytes ?? 0,
        imagePath: "",
        nbdUri: "",
        nbdUnixUri: "",
        addedAtSequence: source?.addedAtSequence ?? 0,
        blobName: d.blob,
      };
    });
    const lastWrite = resolved.lastWriteCapturedAtMs;
    return {
      recoveryPointId: target.kind === "sequence" || target.kind === "time" || target.kind === "latest" ? "" : resolved.base.recoveryPointId,
      sequence: resolved.sequence,
      test,
      network: "",
      ipAddress: "",
      requestedAt,
      completedAt,
      achievedRpoSeconds: lastWrite ? Math.max(0, (requestedAt.getTime() - lastWrite) / 1000) : 0,
      rtoSeconds: (completedAt.getTime() - requestedAt.getTime()) / 1000,
      description: [
        resolved.description,
        result.omittedDisks.length
          ? `${disks.length} of ${machine.disks.length} disks: disk ${result.omittedDisks.join(", ")} was not replicated yet at sequence ${resolved.sequence} ` +
            "(added later: its initial replication completed after it), so it is not part of this failover"
          : "",
        estimate,
      ]
        .filter(Boolean)
        .join("; "),
      disks,
      jobId: job.jobId,
    };
  }


  /** After failover the replica no longer moves on: no new points, no retention of the old ones. */
  private stopPointsOnProcessServer(machine: Machine): void {
    const ps = this.ctx.store.getComponent(machine.processServerId);
    if (!ps) return;
    this.ctx.bus.post(ps.componentId, "", {
      $case: "assignment",
      value: {
        machineId: machine.machineId,
        processServerId: ps.componentId,
        processServerAddress: ps.address,
        policy: undefined,
        state: ReplicationState.REPLICATION_STATE_FAILED_OVER,
        direction: machine.direction,
        masterTargetId: "",
        masterTargetAddress: "",
      },
    });
  }

  private requireMachine(ref: string): Machine {
    const machine = this.ctx.store.getMachine(ref);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
    return machine;
  }
}

function failoverResult(info: FailoverInfo): JobResult {
  return {
    kind: {
      $case: "failover",
      value: {
        recoveryPointId: info.recoveryPointId,
        sequence: info.sequence,
        test: info.test,
        network: info.network,
        ipAddress: info.ipAddress,
        achievedRpoSeconds: info.achievedRpoSeconds,
        rtoSeconds: info.rtoSeconds,
        description: info.description,
        disks: info.disks.map((d) => ({ index: d.index, blob: d.blobName, sizeBytes: d.sizeBytes })),
      },
    },
  };
}
