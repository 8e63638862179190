import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { type Job, JobType, type Machine, ReplicationState, SyncMode } from "../proto/index.js";
import { JobRunner } from "./job-runner.js";
import { type JobContext, stateName } from "./protection-jobs.js";
import { resultOf } from "./command-outcome.js";
import { waitReplicaProcessed } from "./replica-processed.js";

const STEPS = {
  create: "Create disk",
  initial: "Initial replication",
  finalize: "Finalize protection",
  remove: "Stop replicating disk",
} as const;

/** Largest disk `srlab disk add` makes (Azure's largest managed disk is 32 TiB; a lab needs far less). */
const MAX_DISK_BYTES = 4 * 1024 ** 4;
const MiB = 1024 * 1024;

/**
 * Disks added to or removed from a protected machine (seed 002). An added disk gets its own
 * initial replication in the machine's one sequence while the other disks keep replicating;
 * recovery points cover it from the end of that copy on.
 */
export class DiskJobs {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: JobContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  addDisk(machineRef: string, sizeBytes: number): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireProtected(machineRef, "adding a disk");
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < MiB || sizeBytes % MiB !== 0 || sizeBytes > MAX_DISK_BYTES) {
      throw new SrlabError(
        ErrorCode.INVALID_ARGUMENT,
        `disk size ${sizeBytes} bytes: give a whole number of MiB from 1 MiB to 4 TiB (Azure imports disks of whole MiB)`,
      );
    }
    this.checkAgent(machine);
    const job = store.createJob({ type: JobType.JOB_TYPE_ADD_DISK, machineId: machine.machineId, steps: [STEPS.create, STEPS.initial, STEPS.finalize] });
    this.runner.run(job, async () => {
      const created = await this.runner.step(job, STEPS.create, async () => {
        const result = resultOf(
          await bus.send(machine.agentComponentId, job.jobId, { $case: "addDisk", value: { machineId: machine.machineId, sizeBytes } }),
          "addDisk",
          "creating the disk on the agent",
        );
        const index = result.index;
        // The next heartbeat reports it: failover and export find it in the machine's disks from then on.
        await this.runner.waitFor(`disk ${index} in the agent's report`, this.ctx.stepTimeoutMs, () =>
          store.getMachine(machine.machineId)?.disks.some((d) => d.index === index) ? true : undefined,
        );
        return result;
      });
      const index = created.index;
      const sync = await this.runner.step(job, STEPS.initial, async () =>
        resultOf(
          await bus.send(machine.agentComponentId, job.jobId, {
            $case: "startSync",
            value: { machineId: machine.machineId, mode: SyncMode.SYNC_MODE_INITIAL, blockSize: this.ctx.syncBlockBytes, diskIndexes: [index] },
          }),
          "startSync",
          `initial replication of disk ${index}`,
        ),
      );
      const { endSequence: end, blocksSent, bytesSent } = sync;
      const { logger, access, stepTimeoutMs } = this.ctx;
      await this.runner.step(job, STEPS.finalize, () =>
        waitReplicaProcessed({ store, logger, access, runner: this.runner, timeoutMs: stepTimeoutMs }, machine.machineId, end),
      );
      const { path, nbd } = created;
      return { kind: { $case: "addDisk", value: { diskIndex: index, sizeBytes, path, nbd, recoverableFromSequence: end, blocksSent, bytesSent } } };
    });
    return job;
  }

  removeDisk(machineRef: string, diskIndex: number): Job {
    const { store, bus } = this.ctx;
    const machine = this.requireProtected(machineRef, "removing a disk");
    const disk = machine.disks.find((d) => d.index === diskIndex);
    if (!disk) {
      throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${machine.name} has no disk ${diskIndex} (it has ${machine.disks.map((d) => d.index).join(", ")})`);
    }
    if (machine.disks.length === 1) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${diskIndex} is the last disk of ${machine.name}; disable protection instead`);
    this.checkAgent(machine);
    const job = store.createJob({ type: JobType.JOB_TYPE_REMOVE_DISK, machineId: machine.machineId, steps: [STEPS.remove] });
    this.runner.run(job, async () => {
      const removed = await this.runner.step(job, STEPS.remove, async () => {
        const result = resultOf(
          await bus.send(machine.agentComponentId, job.jobId, { $case: "removeDisk", value: { machineId: machine.machineId, diskIndex } }),
          "removeDisk",
          `removing disk ${diskIndex} on the agent`,
        );
        await this.runner.waitFor(`disk ${diskIndex} gone from the agent's report`, this.ctx.stepTimeoutMs, () =>
          store.getMachine(machine.machineId)?.disks.some((d) => d.index === diskIndex) ? undefined : true,
        );
        return { diskIndex, path: result.path, note: "recovery points taken before keep this disk" };
      });
      return { kind: { $case: "removeDisk", value: removed } };
    });
    return job;
  }

  private requireProtected(ref: string, what: string): Machine {
    const machine = this.ctx.store.getMachine(ref);
    if (!machine) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
    if (machine.state !== ReplicationState.REPLICATION_STATE_PROTECTED) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${machine.name} is ${stateName(machine.state)}; ${what} needs a protected machine`);
    }
    return machine;
  }

  private checkAgent(machine: Machine): void {
    if (!this.ctx.bus.isConnected(machine.agentComponentId)) {
      throw new SrlabError(ErrorCode.UNAVAILABLE, `the agent of ${machine.name} is not connected to the configuration server; is it running?`);
    }
  }
}
