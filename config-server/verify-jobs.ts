import { replicaBlobName } from "../common/storage-layout/index.js";
import { deserializeSummary, formatByteRange, hashDisk } from "../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { listPointDocuments } from "../common/recovery/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { type DiskCheck, type Job, type JobResult, JobType, type Machine, ReplicationState, type VerifyResult, VerifyTarget } from "../proto/index.js";
import { JobRunner } from "./job-runner.js";
import type { ConfigStore, StoredProof } from "./store/index.js";

export interface VerifyContext {
  store: ConfigStore;
  blobs: BlobStore;
  logger: Logger;
  /** The failback proof (failback-proofs.ts): each on-premises disk against its Azure disk. */
  failedBack: (machineRef: string) => Promise<VerifyResult>;
}

/** One disk's check: the recovered disk's fingerprint against the source's at the same sequence. */
interface DiskToRead {
  index: number;
  sizeBytes: number;
  blob: string;
  snapshot?: string;
}

const STEP_FIND = "Find the source fingerprints";
const STEP_FAILED_BACK = "Compare the on-premises disks with the Azure disks";
const diskStep = (i: number) => `Verify disk ${i}`;

/**
 * `srlab verify`: recomputes the fingerprint (docs/fingerprint.md) of every disk of a recovered
 * copy from storage and compares it with the source's fingerprint at the same sequence, which
 * the agent took at an app-consistent or group tag, or when its writes stopped for a planned
 * failover. A mismatch names the disk and the byte ranges that differ.
 */
export class VerifyJobs {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: VerifyContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  verify(machineRef: string, target: VerifyTarget, recoveryPointId = ""): Job {
    const { store } = this.ctx;
    const machine = store.getMachine(machineRef);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${machineRef}" (see srlab status)`);
    if (target === VerifyTarget.VERIFY_TARGET_FAILED_BACK) return this.verifyFailedBack(machine);
    const plan = this.whatToRead(machine, target, recoveryPointId);
    const job = store.createJob({ type: JobType.JOB_TYPE_VERIFY, machineId: machine.machineId, steps: [STEP_FIND, ...machine.disks.map((d) => diskStep(d.index))] });
    this.runner.run(job, async () => {
      const { sequence, pointId, disks } = await this.runner.step(job, STEP_FIND, () => plan);
      const expected = store.proofsAt(machine.machineId, sequence);
      if (expected.length === 0) {
        throw new SrlabError(
          ErrorCode.NOT_FOUND,
          `no fingerprint of ${machine.name}'s disks at sequence ${sequence}: app-consistent and group points carry one, and a planned failover with --shutdown-source`,
        );
      }
      const checks: DiskCheck[] = [];
      for (const d of disks) checks.push(await this.runner.step(job, diskStep(d.index), () => this.checkDisk(job, d, expected)));
      const result: VerifyResult = {
        machine: machine.name,
        target,
        sequence,
        recoveryPointId: pointId,
        ok: checks.every((c) => c.ok),
        disks: checks,
      };
      if (!result.ok) {
        const bad = checks.filter((c) => !c.ok);
        throw new VerifyMismatch(
          `${machine.name}: ${bad.map((c) => `disk ${c.index} differs from the source at sequence ${sequence}: ${c.ranges.map(formatByteRange).join(", ") || "whole disk"}`).join("; ")}`,
          result,
        );
      }
      return { kind: { $case: "verify", value: result } };
    }, undefined);
    return job;
  }

  /**
   * The failback's proof as a job: refused at once unless the machine has failed back and its
   * Azure disks still exist (they go with the commit).
   */
  private verifyFailedBack(machine: Machine): Job {
    const { store, failedBack } = this.ctx;
    if (machine.state !== ReplicationState.REPLICATION_STATE_FAILED_BACK || !machine.failover?.disks.length) {
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${machine.name} has not failed back (it is ${ReplicationState[machine.state] ?? machine.state}), or its failback is committed and the Azure disks are gone`,
      );
    }
    const job = store.createJob({ type: JobType.JOB_TYPE_VERIFY, machineId: machine.machineId, steps: [STEP_FAILED_BACK] });
    this.runner.run(job, async () => {
      const result = await this.runner.step(job, STEP_FAILED_BACK, () => failedBack(machine.machineId));
      if (!result.ok) {
        const bad = result.disks.filter((c) => !c.ok);
        throw new VerifyMismatch(
          `${machine.name}: ${bad.map((c) => `on-premises disk ${c.index} differs from its Azure disk: ${c.ranges.map(formatByteRange).join(", ") || "whole disk"}`).join("; ")}`,
          result,
        );
      }
      return { kind: { $case: "verify", value: result } };
    }, undefined);
    return job;
  }

  private async checkDisk(job: Job, d: DiskToRead, proofs: StoredProof[]): Promise<DiskCheck> {
    const proof = proofs.find((p) => p.diskIndex === d.index);
    const source = d.snapshot ? `${d.blob}@${d.snapshot}` : d.blob;
    if (!proof) return { index: d.index, source, expected: "", actual: "", ok: false, ranges: [] };
    const { blobs } = this.ctx;
    const tree = await hashDisk(proof.sizeBytes, (offset, length) => blobs.readPages(d.blob, offset, length, d.snapshot), {
      pageSize: proof.pageSize,
      onProgress: (done, total) => this.runner.progress(job, diskStep(d.index), (100 * done) / total),
    });
    const actual = tree.fingerprint();
    const ok = actual === proof.fingerprint;
    const ranges = ok ? [] : tree.diffSummary(deserializeSummary(proof.summary));
    return { index: d.index, source, expected: proof.fingerprint, actual, ok, ranges };
  }

  /** Which blobs hold the copy and at which source sequence it was cut; refuses what does not exist. */
  private whatToRead(machine: Machine, target: VerifyTarget, pointRef: string): Promise<{ sequence: number; pointId: string; disks: DiskToRead[] }> | never {
    const sizes = new Map(machine.disks.map((d) => [d.index, d.sizeBytes]));
    switch (target) {
      case VerifyTarget.VERIFY_TARGET_FAILED_OVER:
      case VerifyTarget.VERIFY_TARGET_TEST_FAILOVER: {
        const test = target === VerifyTarget.VERIFY_TARGET_TEST_FAILOVER;
        const info = test ? machine.testFailover : machine.failover;
        if (!info) {
          throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} has no ${test ? "test failover" : "failover"} to verify`);
        }
        return Promise.resolve({
          sequence: info.sequence,
          pointId: info.recoveryPointId,
          disks: info.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes || sizes.get(d.index) || 0, blob: d.blobName })),
        });
      }
      case VerifyTarget.VERIFY_TARGET_POINT: {
        const point = this.findPoint(machine, pointRef);
        return (async () => {
          const docs = await listPointDocuments(this.ctx.blobs, machine.machineId, this.ctx.logger);
          const doc = docs.find((p) => p.recoveryPointId === point.recoveryPointId);
          if (!doc) throw new SrlabError(ErrorCode.NOT_FOUND, `recovery point ${point.recoveryPointId} is not in storage (removed by retention?)`);
          return {
            sequence: point.sequence,
            pointId: point.recoveryPointId,
            disks: Object.entries(doc.snapshots).map(([index, snapshot]) => ({
              index: Number(index),
              sizeBytes: sizes.get(Number(index)) ?? 0,
              blob: replicaBlobName(machine.machineId, Number(index)),
              snapshot,
            })),
          };
        })();
      }
      case VerifyTarget.VERIFY_TARGET_REPLICA: {
        // The replica moves while writes go on; it is comparable at a sequence the source has a
        // fingerprint for, once everything through it is processed and nothing after it.
        const processed = machine.stats?.processedSequence ?? 0;
        const captured = machine.stats?.capturedSequence ?? 0;
        if (captured > processed) {
          throw new SrlabError(
            ErrorCode.WRONG_STATE,
            `${machine.name}'s replica is behind the source (processed ${processed}, captured ${captured}); verify a point instead (srlab tag, then --point)`,
          );
        }
        return Promise.resolve({
          sequence: processed,
          pointId: "",
          disks: machine.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes, blob: replicaBlobName(machine.machineId, d.index) })),
        });
      }
      default:
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "say what to verify: --point ID, --failed-over, --test, --replica or --failed-back");
    }
  }

  /** A point id, or a group point id (one id shared by every member). */
  private findPoint(machine: Machine, ref: string) {
    const { store } = this.ctx;
    if (!ref) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "--point needs a recovery point id (see srlab points)");
    const points = store.listRecoveryPoints(machine.machineId);
    const direct = points.find((p) => p.recoveryPointId === ref);
    if (direct) return direct;
    const group = store.getGroupPoint(ref);
    const member = group?.members.find((m) => m.machineId === machine.machineId);
    const viaGroup = group && member ? points.find((p) => p.tagName === group.tagName && p.sequence === member.sequence) : undefined;
    if (viaGroup) return viaGroup;
    throw new SrlabError(ErrorCode.NOT_FOUND, `machine ${machine.name} has no recovery point ${ref} (see srlab points ${machine.name})`);
  }
}

/** A verification that ran and found differences; the job's result still carries every check. */
export class VerifyMismatch extends Error {
  /** The failed job keeps every check as its result. */
  readonly result: JobResult;

  constructor(
    message: string,
    findings: VerifyResult,
  ) {
    super(message);
    this.result = { kind: { $case: "verify", value: findings } };
  }
}
