import type { Logger } from "../common/logger.js";
import { syncModes, workloadProfiles } from "../common/enum-names/index.js";
import {
  type AssignmentResult,
  type CommandResult,
  type DiskCreatedResult,
  type DiskDroppedResult,
  type FingerprintDisksResult,
  type InsertTagCommand,
  type InsertTagResult,
  JobState,
  type MachineAssignment,
  type StartSyncCommand,
  type StopWritesCommand,
  type StopWritesResult,
  type SwitchDisksResult,
  type SwitchDisksCommand,
  TagPhase,
  type UnprotectResult,
  type UpdateJobRequest,
  type WatchCommandsResponse,
  type WorkloadCommand,
} from "../proto/index.js";
import type { Capture } from "./capture.js";
import type { CapturingExport } from "./capturing-export.js";
import type { DiskFingerprint } from "./disk-fingerprint.js";
import { runHook } from "./hooks.js";
import type { ReplicationClient } from "./replication-client.js";
import { runSync, type SyncMode, type SyncResult } from "./sync.js";
import { runWorkload, type WorkloadProfile, type WorkloadResult, type WorkloadSpec } from "./workload/index.js";
import type { WriteGate } from "./write-gate.js";

export interface CommandContext {
  capture: Capture;
  replication: ReplicationClient;
  exports: readonly CapturingExport[];
  /** Holds writes while a multi-machine tag is cut. */
  gate: WriteGate;
  /** Hash trees of the image-file disks, by disk index (none for page blobs). */
  fingerprints: ReadonlyArray<DiskFingerprint | undefined>;
  hooks: { preFreeze?: string; postThaw?: string; timeoutMs: number };
  machineId: () => string;
  /** Applies an assignment (persist, arm capture, point replication at the process server). */
  assign: (assignment: MachineAssignment) => Promise<AssignmentResult>;
  /** Protection disabled: stop replicating, forget the queue and tracking, keep serving the disks. */
  unprotect: () => Promise<UnprotectResult>;
  /** Moves the machine onto new images (failback to an alternate location). */
  switchDisks: (command: SwitchDisksCommand) => SwitchDisksResult;
  /** A disk added after protection: created, declared to the process server, exported. */
  addDisk: (sizeBytes: number) => Promise<DiskCreatedResult>;
  removeDisk: (index: number) => Promise<DiskDroppedResult>;
  updateJob: (update: Partial<UpdateJobRequest> & { jobId: string }) => Promise<void>;
  timeUnitMs: number;
  logger: Logger;
}

const STEP = { initial: "Initial replication", resync: "Resync", workload: "Run workload" } as const;
const WRITES_STOPPED = "writes stopped for failover";
/** An insert-tag answer before any of it is filled in. */
const NO_TAG: InsertTagResult = { tagName: "", sequence: 0, proofs: [], holdMs: 0, held: false, released: false };
/** A coordinator that never commits or aborts: the agent releases the writes itself. */
const DEFAULT_HOLD_TIMEOUT_MS = 10_000;

/** A tag cut: its name, sequence and the image-file disks' fingerprints at exactly that sequence. */
type TagCut = Pick<InsertTagResult, "tagName" | "sequence" | "proofs">;

/** The agent's side of the configuration server's commands; each answers with the result of its own kind. */
export class AgentCommands {
  private sync?: AbortController;
  /** Running workloads by job id, so one can be stopped alone. */
  private readonly workloads = new Map<string, AbortController>();

  constructor(private readonly ctx: CommandContext) {}

  handle = async (command: WatchCommandsResponse): Promise<CommandResult | undefined> => {
    const c = command.command;
    switch (c?.$case) {
      case "assignment":
        return { kind: { $case: "assignment", value: await this.ctx.assign(c.value) } };
      case "startSync": {
        const { mode: _mode, ...counts } = await this.startSync(command.jobId, c.value);
        return { kind: { $case: "startSync", value: counts } };
      }
      case "insertTag":
        return { kind: { $case: "insertTag", value: await this.insertTag(c.value) } };
      case "workload": {
        const w = await this.workload(command.jobId, c.value);
        return { kind: { $case: "workload", value: { ...w, digest: w.digest ?? "" } } };
      }
      case "stopWorkload": {
        const w = this.workloads.get(c.value.jobId);
        w?.abort(new Error("workload cancelled"));
        return { kind: { $case: "stopWorkload", value: { stopped: Boolean(w) } } };
      }
      case "stopWrites":
        return { kind: { $case: "stopWrites", value: await this.stopWrites(c.value) } };
      case "addDisk":
        return { kind: { $case: "addDisk", value: await this.ctx.addDisk(c.value.sizeBytes) } };
      case "removeDisk":
        return { kind: { $case: "removeDisk", value: await this.ctx.removeDisk(c.value.diskIndex) } };
      case "resumeWrites":
        // Writes were stopped for a failback: the master target rewrote the images meanwhile.
        for (const f of this.ctx.fingerprints) f?.rebuild();
        this.ctx.capture.unblockWrites();
        return { kind: { $case: "resumeWrites", value: { resumed: true } } };
      case "switchDisks":
        return { kind: { $case: "switchDisks", value: this.ctx.switchDisks(c.value) } };
      case "unprotect":
        if (c.value.machineId && c.value.machineId !== this.ctx.machineId()) {
          throw new Error(`unprotect is for machine ${c.value.machineId}, this agent serves ${this.ctx.machineId()}`);
        }
        this.sync?.abort(new Error("protection disabled"));
        return { kind: { $case: "unprotect", value: await this.ctx.unprotect() } };
      case "fingerprintDisks":
        return { kind: { $case: "fingerprintDisks", value: await this.fingerprintDisks() } };
      default:
        throw new Error(`the mobility agent does not handle ${(c as { $case?: string } | undefined)?.$case ?? "an empty"} command`);
    }
  };

  /** Cancels running syncs and workloads (agent stop). */
  cancelAll(): void {
    this.sync?.abort(new Error("agent stopping"));
    for (const w of this.workloads.values()) w.abort();
  }

  async startSync(jobId: string, cmd: Pick<StartSyncCommand, "mode" | "blockSize"> & { diskIndexes?: number[] }): Promise<SyncResult> {
    const { capture, replication } = this.ctx;
    const mode = syncModes.name(cmd.mode) as SyncMode;
    if (!capture.armed) throw new Error("machine is not protected: no assignment received yet");
    const port = replication.processServer;
    if (!port) throw new Error("no process server assigned to this machine");
    // One compare at a time: a new request (resync after a failed initial copy) supersedes the old.
    this.sync?.abort(new Error(`superseded by a new ${mode} request`));
    const abort = new AbortController();
    this.sync = abort;
    // A halted stream (sequence gap, lost writes) restarts; a resync also tells the server so.
    if (mode === "resync" || replication.state === "halted" || replication.state === "idle") {
      await replication.restart({ resync: mode === "resync" });
    }
    const stepName = STEP[mode];
    try {
      const result = await runSync(
        {
          capture,
          port,
          machineId: this.ctx.machineId(),
          timeUnitMs: this.ctx.timeUnitMs,
          logger: this.ctx.logger,
          signal: abort.signal,
          onProgress: (p) =>
            void this.ctx.updateJob({ jobId, stepName, stepState: JobState.JOB_STATE_IN_PROGRESS, progressPercent: p.progressPercent, bytesSent: p.bytesSent }),
        },
        { mode: mode, blockSize: cmd.blockSize, disks: cmd.diskIndexes },
      );
      replication.syncFinished();
      return result;
    } finally {
      if (this.sync === abort) this.sync = undefined;
    }
  }

  /**
   * An app-consistent tag. Alone (phase unspecified): freeze hook, tag, thaw hook. In a group the
   * coordinator first prepares every member (freeze hook, then new writes are held), commits
   * each (tag at the current sequence, writes released, thaw hook) once all hold, or aborts.
   */
  async insertTag(
    cmd: Pick<InsertTagCommand, "tagName" | "consistencyGroup"> & Partial<Pick<InsertTagCommand, "phase" | "holdTimeoutMs">>,
  ): Promise<InsertTagResult> {
    const { capture, gate, logger } = this.ctx;
    const phase = cmd.phase ?? TagPhase.TAG_PHASE_UNSPECIFIED;
    const tagName = cmd.tagName || `app-${Date.now()}`;
    switch (phase) {
      case TagPhase.TAG_PHASE_PREPARE: {
        if (!capture.armed) throw new Error("machine is not protected yet: no tag can be inserted");
        await this.runFreezeHook(tagName);
        await this.fingerprintsReady();
        const timeoutMs = cmd.holdTimeoutMs || DEFAULT_HOLD_TIMEOUT_MS;
        gate.close(timeoutMs, (heldMs) => {
          logger.warn("group tag not committed in time: held writes released", { tagName, heldMs: Math.round(heldMs) });
          void this.runThawHook(tagName);
        });
        // Page-blob writes accepted before the hold are captured once they land.
        for (const e of this.ctx.exports) await e.flush();
        return { ...NO_TAG, held: true };
      }
      case TagPhase.TAG_PHASE_COMMIT: {
        if (!gate.isHeld) throw new Error(`writes are not held for tag ${tagName} (the hold timed out or was never prepared)`);
        let cut: TagCut;
        let heldMs: number;
        try {
          cut = this.cutTag(tagName, cmd.consistencyGroup);
        } finally {
          // Released whether or not the tag made it; the coordinator aborts the group on failure.
          heldMs = gate.open();
          void this.runThawHook(tagName);
        }
        logger.info("group tag: writes held", { tagName, heldMs: Math.round(heldMs * 100) / 100 });
        return { ...NO_TAG, ...cut, holdMs: heldMs };
      }
      case TagPhase.TAG_PHASE_ABORT: {
        const released = gate.isHeld;
        gate.open();
        if (released) void this.runThawHook(tagName);
        return { ...NO_TAG, held: false, released };
      }
      default: {
        await this.runFreezeHook(tagName);
        try {
          await this.fingerprintsReady();
          return { ...NO_TAG, ...this.cutTag(tagName, cmd.consistencyGroup) };
        } finally {
          // The application is thawed whether or not the tag made it.
          await this.runThawHook(tagName);
        }
      }
    }
  }

  /** The tag record and every disk's fingerprint, in one turn: both name the same sequence. */
  private cutTag(tagName: string, consistencyGroup: string): TagCut {
    const record = this.ctx.capture.recordTag(tagName, consistencyGroup);
    const proofs = this.ctx.fingerprints.flatMap((f) => (f ? [f.proof()] : []));
    this.ctx.logger.info("app-consistent tag inserted", { tagName, sequence: record.sequence, consistencyGroup });
    return { sequence: record.sequence, tagName, proofs };
  }

  /** Waits for trees still being built and brings them up to date, outside any hold. */
  private async fingerprintsReady(): Promise<void> {
    for (const f of this.ctx.fingerprints) {
      if (!f) continue;
      await f.ready();
      f.refresh();
    }
  }

  private hookEnv(tagName: string) {
    return { SRLAB_TAG_NAME: tagName, SRLAB_MACHINE_ID: this.ctx.machineId() };
  }

  private async runFreezeHook(tagName: string): Promise<void> {
    const { hooks } = this.ctx;
    if (hooks.preFreeze) await runHook("preFreeze", hooks.preFreeze, hooks.timeoutMs, this.hookEnv(tagName));
  }

  private async runThawHook(tagName: string): Promise<void> {
    const { hooks, logger } = this.ctx;
    if (!hooks.postThaw) return;
    await runHook("postThaw", hooks.postThaw, hooks.timeoutMs, this.hookEnv(tagName)).catch((err: unknown) =>
      logger.error("postThaw hook failed", { error: (err as Error).message }),
    );
  }

  async workload(jobId: string, cmd: WorkloadCommand): Promise<WorkloadResult> {
    const target = this.ctx.exports.find((e) => e.diskIndex === cmd.diskIndex);
    if (!target) throw new Error(`no disk ${cmd.diskIndex} (the machine has ${this.ctx.exports.map((e) => e.diskIndex).join(", ")})`);
    const reason = this.ctx.capture.writesBlockedReason;
    if (reason) throw new Error(`cannot run a workload: ${reason}`);
    const profile = workloadProfiles.name(cmd.profile) as WorkloadProfile;
    const spec: WorkloadSpec = {
      profile,
      seed: cmd.seed || undefined,
      blockSize: cmd.blockSize || undefined,
      rateBytesPerSec: cmd.rateBytesPerSecond || undefined,
      iops: cmd.iops || undefined,
      durationMs: cmd.durationSeconds > 0 ? cmd.durationSeconds * 1000 : undefined,
    };
    const abort = new AbortController();
    this.workloads.set(jobId, abort);
    try {
      // Through the capturing export: the same image-write-then-capture path as NBD clients.
      const result = await runWorkload(
        { size: target.size, write: (offset, data) => target.write(offset, data, false), flush: () => target.flush() },
        spec,
        {
          signal: abort.signal,
          onProgress: (p) =>
            void this.ctx.updateJob({
              jobId,
              stepName: STEP.workload,
              stepState: JobState.JOB_STATE_IN_PROGRESS,
              progressPercent: spec.durationMs ? Math.min(99, (p.seconds * 100000) / spec.durationMs) : 0,
              bytesSent: p.bytes,
              message: `${p.writes} writes, ${Math.round(p.bytesPerSec)} B/s`,
            }),
        },
      );
      return result;
    } finally {
      this.workloads.delete(jobId);
    }
  }

  /**
   * Every image-file disk's fingerprint at the current sequence (taken in one turn, so both name
   * the same state), after a tree still being built (a rebuild after failback) is complete.
   */
  async fingerprintDisks(): Promise<FingerprintDisksResult> {
    await this.fingerprintsReady();
    const proofs = this.ctx.fingerprints.flatMap((f) => (f ? [f.proof()] : []));
    return { sequence: this.ctx.capture.lastSequence, proofs };
  }

  /**
   * Stops the machine's writes (planned failover, failback). The result carries each disk's
   * fingerprint at `lastSequence`: the source's final state a planned failover must reproduce.
   */
  async stopWrites(cmd: Pick<StopWritesCommand, "drain">): Promise<StopWritesResult> {
    const { capture } = this.ctx;
    // Workloads stop issuing first, so none of their writes hits the block and fails the job.
    for (const w of this.workloads.values()) w.abort();
    capture.blockWrites(WRITES_STOPPED);
    // Writes accepted before the block (still queued on a page blob) are captured by then.
    for (const e of this.ctx.exports) await e.flush();
    if (cmd.drain) await capture.whenAllDurable();
    await this.fingerprintsReady();
    const proofs = this.ctx.fingerprints.flatMap((f) => (f ? [f.proof()] : []));
    return { lastSequence: capture.lastSequence, drained: cmd.drain, proofs };
  }
}
