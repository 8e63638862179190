// A throwaway srlab lab for one benchmark: started with labUp in a temp dir, driven as the admin.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { workloadProfiles } from "../common/enum-names/index.js";
import { sleep } from "../common/async/index.js";
import { createLogger } from "../common/logger.js";
import { onShutdown } from "../common/shutdown/index.js";
import { status as grpcStatus } from "@grpc/grpc-js";
import { AdminClient } from "../cli/admin-client.js";
import { jobDocument, waitForJob } from "../cli/commands/jobs.js";
import { statusDocument } from "../cli/commands/status.js";
import { LabLayout, labDown, labUp } from "../cli/lab/index.js";
import { type Job, JobState } from "../proto/index.js";
import { type CpuSnapshot, labCpu } from "./cpu.js";

export type MachineStatus = ReturnType<typeof statusDocument>["machines"][number];

export interface BenchLabOptions {
  machines: number;
  storage: "azurite" | "directory";
  diskSizeBytes: number;
  /**
   * Agent data-mode budget. Raised above the default so a burst stays in data mode: in bitmap
   * mode overwrites coalesce and "bytes written" would overstate what was replicated.
   */
  captureBudgetBytes: number;
  /** How often agents and process servers report to the CS, i.e. how fresh `status` is. */
  heartbeatMs: number;
  /** On-premises process servers (default 1); machines are spread over them. */
  processServers?: number;
  say: (line: string) => void;
}

export interface WorkloadRequest {
  profile: "sequential" | "random" | "zipf" | "append-log";
  /** Per machine; 0 = unlimited. */
  rateBytesPerSecond: number;
  durationSeconds: number;
}

export interface WorkloadOutcome {
  machineId: string;
  writes: number;
  bytes: number;
  seconds: number;
}

const ENDED = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

const START_ATTEMPTS = 3;

/** Status sampling period (the issue asks for 250 ms). */
export const TICK_MS = 250;

export class BenchLab {
  /** Ctrl-C or SIGTERM stops this lab instead of leaving its daemons running. */
  private readonly unregister: () => void;

  private constructor(
    readonly dir: string,
    readonly client: AdminClient,
    readonly machineNames: string[],
    private readonly heartbeatMs: number,
  ) {
    this.unregister = stopOnSignal(dir);
  }

  static async start(o: BenchLabOptions): Promise<BenchLab> {
    // A start that fails under load (a daemon not ready within its timeout) gets a fresh lab.
    for (let attempt = 1; ; attempt++) {
      try {
        return await BenchLab.startOnce(o);
      } catch (err) {
        if (attempt >= START_ATTEMPTS) throw err;
        // The whole message: a daemon that exited during start brings its log's last lines, and
        // the lab directory holding that log is gone once the retry starts.
        o.say(`lab start failed (${(err as Error).message}); retrying with a fresh lab`);
      }
    }
  }

  private static async startOnce(o: BenchLabOptions): Promise<BenchLab> {
    const dir = mkdtempSync(join(tmpdir(), `srlab-bench-${o.storage}-${o.machines}-`));
    // The daemons take SRLAB_* variables from the environment labUp spawns them with.
    const env = {
      SRLAB_HEARTBEAT_INTERVAL_MS: String(o.heartbeatMs),
      SRLAB_CAPTURE__MEMORY_BUDGET_BYTES: String(o.captureBudgetBytes),
    };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    // A signal during the start stops what labUp started so far.
    const unregister = stopOnSignal(dir);
    try {
      await labUp({
        dir,
        machines: o.machines,
        disksPerMachine: 1,
        diskSizeBytes: o.diskSizeBytes,
        processServers: o.processServers ?? 1,
        timeUnitSeconds: 1,
        storage: o.storage,
      });
    } catch (err) {
      await labDown(dir).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      throw err;
    } finally {
      unregister();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    const names = Array.from({ length: o.machines }, (_, i) => `machine-${i + 1}`);
    return new BenchLab(dir, AdminClient.forDir(dir), names, o.heartbeatMs);
  }

  /** Name of every on-premises process server. */
  processServerNames(): string[] {
    return new LabLayout(this.dir)
      .read()
      .components.filter((c) => c.role === "process-server" && c.name !== "process-server-azure")
      .map((c) => c.name);
  }

  /** CPU seconds of every daemon so far (read from /proc); compare two with cpuDelta. */
  cpu(): CpuSnapshot {
    return labCpu(this.dir);
  }

  get connectionString(): string | undefined {
    return this.client.manifest.storage.connectionString;
  }

  async status(): Promise<MachineStatus[]> {
    const c = this.client;
    const [{ components }, { machines }] = await Promise.all([c.call(c.client.listComponents, {}), c.call(c.client.listMachines, {})]);
    return statusDocument(c, components, machines).machines;
  }

  /** Enables protection on every machine at once and waits for every job. */
  async protectAll(): Promise<void> {
    const c = this.client;
    const started = await Promise.all(this.machineNames.map((machine) => c.call(c.client.enableProtection, { machine, policyName: "" })));
    await Promise.all(started.map(({ job }) => waitForJob(c, job!.jobId, false)));
  }

  /** Starts the built-in workload generator on every machine at once; returns the job ids. */
  async startWorkloads(w: WorkloadRequest): Promise<string[]> {
    const c = this.client;
    const started = await Promise.all(
      this.machineNames.map((machine, i) =>
        retryUnavailable(() => c.call(c.client.startWorkload, {
          machine,
          workload: {
            machineId: "",
            profile: workloadProfiles.parse(w.profile),
            rateBytesPerSecond: w.rateBytesPerSecond,
            iops: 0,
            durationSeconds: w.durationSeconds,
            seed: i + 1,
            blockSize: 0,
            diskIndex: 0,
          },
        })),
      ),
    );
    return started.map(({ job }) => job!.jobId);
  }

  /** Outcomes of the given jobs that have ended, by job id (one call); throws when one failed. */
  async workloadOutcomes(jobIds: readonly string[]): Promise<Map<string, WorkloadOutcome>> {
    const wanted = new Set(jobIds);
    const { jobs } = await this.client.call(this.client.client.listJobs, { machine: "" });
    const out = new Map<string, WorkloadOutcome>();
    for (const job of jobs) if (wanted.has(job.jobId) && ENDED.has(job.state)) out.set(job.jobId, outcomeOf(job));
    return out;
  }

  /** Waits until every machine is caught up (nothing pending anywhere) for a whole heartbeat. */
  async waitCaughtUp(timeoutMs: number): Promise<MachineStatus[]> {
    const until = Date.now() + timeoutMs;
    // Caught up across a heartbeat interval, so one stale report cannot pass for a drained pipeline.
    const needed = Math.ceil(this.heartbeatMs / TICK_MS) + 1;
    let streak = 0;
    for (;;) {
      const machines = await this.status();
      streak = machines.every((m) => isCaughtUp(m)) ? streak + 1 : 0;
      if (streak >= needed) return machines;
      if (Date.now() > until) throw new Error(`machines did not catch up within ${timeoutMs / 1000} s`);
      await sleep(TICK_MS);
    }
  }

  /** Stops every component; the lab directory (images included) stays until remove(). */
  async down(): Promise<void> {
    this.client.close();
    await labDown(this.dir);
    this.unregister();
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    try {
      await this.down();
    } finally {
      this.remove();
    }
  }
}

let shutdownLogger: ReturnType<typeof createLogger> | undefined;

/** Registers a lab directory to be stopped and removed on SIGINT/SIGTERM; returns the unregister. */
function stopOnSignal(dir: string): () => void {
  shutdownLogger ??= createLogger("bench", { format: "pretty" });
  return onShutdown(
    async () => {
      await labDown(dir);
      rmSync(dir, { recursive: true, force: true });
    },
    { logger: shutdownLogger, timeoutMs: 60_000 },
  );
}

/** Nothing waits in the agent queue or the process-server cache: everything received is uploaded. */
export function isCaughtUp(m: MachineStatus, atLeastSequence = 0): boolean {
  return (
    m.pendingBytes === 0 &&
    m.rpoSeconds === 0 &&
    m.uploadedSequence === m.receivedSequence &&
    m.receivedSequence >= atLeastSequence &&
    m.captureMode === "data"
  );
}

/**
 * On a saturated 2-core machine an agent's command stream can drop for a moment; the CS then
 * answers UNAVAILABLE until the agent reconnects, which it does on its own.
 */
async function retryUnavailable<T>(call: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if ((err as { code?: number }).code !== grpcStatus.UNAVAILABLE || Date.now() > until) throw err;
      await sleep(500);
    }
  }
}

function outcomeOf(job: Job): WorkloadOutcome {
  const doc = jobDocument(job);
  if (doc.state !== "succeeded") throw new Error(`workload job ${doc.jobId} ${doc.state}: ${doc.error ?? "no reason given"}`);
  const r = (doc.result ?? {}) as { writes?: number; bytes?: number; seconds?: number };
  return { machineId: job.machineId, writes: r.writes ?? 0, bytes: r.bytes ?? 0, seconds: r.seconds ?? 0 };
}
