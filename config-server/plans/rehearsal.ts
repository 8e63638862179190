import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../../common/async/index.js";
import { type ByteRange, formatByteRange } from "../../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { writeFileAtomicSync } from "../../common/fs/index.js";
import type { Logger } from "../../common/logger.js";
import { Health, type Job, JobState, ReplicationState, type TelemetrySample, VerifyTarget, type WorkloadCommand } from "../../proto/index.js";
import type { GroupPoints } from "../group-points.js";
import type { ConfigStore } from "../store/index.js";
import { JobRunner } from "../job-runner.js";
import type { VerifyResult } from "../verify-jobs.js";
import { type PlanRunner, planGroupName, type RunSummary } from "./plan-runner.js";
import type { PlanSpec } from "./plan-spec.js";
import { renderRehearsalHtml } from "./rehearsal-html.js";
import { failuresOf, type RehearsalCycle, type RehearsalReport, renderJunit, type ReportMachine, type ReportProof, type ReportStep, targetMet } from "./rehearsal-report.js";

export interface RehearsalWorkloadSpec {
  name: string;
  profile: string;
  blockSize: number;
  rateBytesPerSecond: number;
}

export interface RehearsalOptions {
  cycle: RehearsalCycle;
  network: string;
  workload?: RehearsalWorkloadSpec;
  autoApprove: boolean;
  scheduled: boolean;
}

export interface RehearsalContext {
  store: ConfigStore;
  runner: PlanRunner;
  groups: GroupPoints;
  logger: Logger;
  /** Starts the jobs a rehearsal waits for. */
  jobs: {
    verify(machine: string, target: VerifyTarget): Job;
    appConsistentPoint(machine: string, tagName: string): Job;
    workload(machine: string, spec: WorkloadCommand): Job;
  };
  /** The configuration server's telemetry samples since a time (the sampler TelemetryService serves). */
  samples(since: Date): TelemetrySample[];
  /** Each run's report files go to <reportRoot>/<runId>/. */
  reportRoot: string;
  /** How long replication may take to catch up after the cleanup before it counts as unhealthy. */
  healthyTimeoutMs: number;
}

/** The rehearsal's own steps live in this group; plan steps keep their plan group. */
export const REHEARSAL_GROUP = "rehearsal";
/** Each generator job writes for this long; the rehearsal starts the next until it stops the load. */
const WORKLOAD_CHUNK_SECONDS = 5;

const STEP = {
  workload: "workload: generated writes on every machine",
  tag: "tag: group-consistent app point",
  testFailover: "test failover",
  verify: (m: string) => `verify: test failover of ${m}`,
  cleanup: "cleanup",
  healthy: (m: string) => `replication healthy: ${m}`,
};

/**
 * Rehearsals: a plan's test (and later full) cycle as one job whose steps are the rehearsal's
 * own (workload, tag, verify, health) and the plan runs' steps, with a proof per disk at every
 * verify step and a report (report.json, junit.xml, report.html) at the end. The configuration
 * server runs them for `srlab rehearse` and for schedules alike.
 */
export class Rehearsals {
  private readonly jobs: JobRunner;

  constructor(private readonly ctx: RehearsalContext) {
    this.jobs = new JobRunner(ctx.store, ctx.logger);
  }

  /** Starts a rehearsal: a plan run of operation `rehearsal-<cycle>`. Refuses what cannot start. */
  start(spec: PlanSpec, o: RehearsalOptions): Job {
    const { store } = this.ctx;
    if (o.cycle !== "test") {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `the ${o.cycle} cycle is not available yet; rehearse with --cycle test`);
    }
    if (!store.getNetwork(o.network)) throw new SrlabError(ErrorCode.NOT_FOUND, `no network named "${o.network}" (srlab network list)`);
    const running = store
      .listPlanRuns(spec.name)
      .find((r) => r.operation.startsWith("rehearsal-") && store.getJob(r.jobId)?.state === JobState.JOB_STATE_IN_PROGRESS);
    if (running) throw new SrlabError(ErrorCode.WRONG_STATE, `plan ${spec.name} is already being rehearsed (run ${running.jobId})`);
    const machines = spec.groups.flatMap((g) => g.machines);
    for (const name of machines) {
      const m = store.getMachine(name);
      if (m?.state !== ReplicationState.REPLICATION_STATE_PROTECTED) {
        throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${name} is not protected (${m ? ReplicationState[m.state] : "unknown"}); a rehearsal starts from protected machines`);
      }
      if (m.testFailover) throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${name} already has a test failover (srlab failover-cleanup ${name})`);
    }
    const groupOf = (m: string) => spec.groups.find((g) => g.machines.includes(m))!.name;
    const steps = [
      ...(o.workload ? [{ name: STEP.workload, group: REHEARSAL_GROUP }] : []),
      { name: STEP.tag, group: REHEARSAL_GROUP },
      ...this.ctx.runner.steps(spec, "test-failover", `${STEP.testFailover}: `),
      ...machines.map((m) => ({ name: STEP.verify(m), group: groupOf(m), machine: m })),
      ...this.ctx.runner.steps(spec, "cleanup", `${STEP.cleanup}: `),
      ...machines.map((m) => ({ name: STEP.healthy(m), group: groupOf(m), machine: m })),
    ];
    const job = store.createPlanRun(
      { type: "Rehearsal", machineId: "", steps },
      { planName: spec.name, operation: `rehearsal-${o.cycle}`, optionsJson: JSON.stringify(o) },
    );
    this.jobs.run(job, () => this.testCycle(job, spec, o));
    return job;
  }

  /** The report of an ended rehearsal (its job's result), or one clear error. */
  report(runId: string): RehearsalReport {
    const { store } = this.ctx;
    const run = store.getPlanRun(runId);
    if (!run?.operation.startsWith("rehearsal-")) throw new SrlabError(ErrorCode.NOT_FOUND, `no rehearsal ${runId} (srlab plan runs)`);
    const job = store.getJob(runId);
    if (!job || job.state === JobState.JOB_STATE_IN_PROGRESS || job.state === JobState.JOB_STATE_NOT_STARTED) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `rehearsal ${runId} has not ended yet`);
    }
    const report = parseReport(job.resultJson);
    if (!report) throw new SrlabError(ErrorCode.NOT_FOUND, `rehearsal ${runId} ended without a report: ${job.error || "no result"}`);
    return report;
  }

  reportDir(runId: string): string {
    return join(this.ctx.reportRoot, runId);
  }

  private async testCycle(job: Job, spec: PlanSpec, o: RehearsalOptions): Promise<RehearsalReport> {
    const { store, runner, logger } = this.ctx;
    const started = new Date();
    const machines = spec.groups.flatMap((g) => g.machines);
    const proofs = new Map<string, ReportProof[]>(machines.map((m) => [m, []]));
    const load = o.workload ? this.startWorkload(job, machines, o.workload) : undefined;
    let summary: RunSummary | undefined;
    let failure: Error | undefined;
    const run = { point: "", shutdownSource: false, network: o.network, autoApprove: o.autoApprove, stopOnFailure: true };
    try {
      if (load) await load.started;
      run.point = await this.jobs.step(job, STEP.tag, () => this.tag(spec));
      await runner.execute(job, spec, "test-failover", run, `${STEP.testFailover}: `);
      summary = runner.summary(spec, "test-failover");
      // Every disk is proved, even after one differs: the report names every bad disk.
      for (const m of machines) {
        await this.jobs
          .step(job, STEP.verify(m), async () => {
            const result = await this.verify(m, VerifyTarget.VERIFY_TARGET_TEST_FAILOVER);
            proofs.get(m)!.push(...proofsOf(STEP.verify(m), result));
            if (!result.ok) throw new Error(mismatchLine(result));
            return `${result.disks.length} disk${result.disks.length === 1 ? "" : "s"} equal to the source at sequence ${result.sequence}`;
          })
          .catch((err: Error) => {
            failure ??= err;
          });
      }
    } catch (err) {
      failure = err as Error;
    }
    // A test failover is never left behind, whatever failed before: the plan's cleanup, in
    // order, of the machines that have one.
    try {
      const leftover = spec.groups
        .map((g) => ({ ...g, machines: g.machines.filter((m) => store.getMachine(m)?.testFailover) }))
        .filter((g) => g.machines.length > 0);
      if (leftover.length) await runner.execute(job, { ...spec, groups: leftover }, "cleanup", run, `${STEP.cleanup}: `);
    } catch (err) {
      failure ??= err as Error;
    }
    await load?.stop();
    if (!failure) {
      for (const m of machines) {
        await this.jobs.step(job, STEP.healthy(m), () => this.healthy(m)).catch((err: Error) => {
          failure ??= err;
        });
      }
    }
    if (failure) logger.warn("rehearsal failed", { runId: job.jobId, plan: spec.name, error: failure.message });

    const report = this.buildReport(job, spec, o, started, summary, proofs);
    this.writeFiles(report);
    if (report.result === "failed") {
      throw Object.assign(new Error(`rehearsal of ${spec.name} failed: ${report.failures[0] ?? failure?.message ?? "see the report"}`), { result: report });
    }
    return report;
  }

  /** A group-consistent app point for a plan that is a replication group; else one app point per machine. */
  private async tag(spec: PlanSpec): Promise<string> {
    const { groups } = this.ctx;
    const tagName = `rehearsal-${spec.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    if (spec.replicationGroup) {
      const done = await this.await(groups.groupPoint(planGroupName(spec.name), tagName));
      const point = JSON.parse(done.resultJson) as { groupPointId: string; holdMs: number };
      return point.groupPointId;
    }
    await Promise.all(spec.groups.flatMap((g) => g.machines).map((m) => this.await(this.ctx.jobs.appConsistentPoint(m, tagName))));
    return "latest-app-consistent";
  }

  private async verify(machine: string, target: VerifyTarget): Promise<VerifyResult> {
    const job = this.ctx.jobs.verify(machine, target);
    const done = await this.finished(job);
    const result = parseJson<VerifyResult>(done.resultJson);
    if (!result?.disks) throw new Error(`verify ${machine}: ${done.error || "no result"}`);
    return result;
  }

  /** The machine is protected again, healthy, and its replica caught up with everything written. */
  private async healthy(name: string): Promise<string> {
    const { store } = this.ctx;
    let last = "";
    try {
      const m = await pollUntil(
        `replication of ${name} to catch up`,
        () => {
          const m = store.getMachine(name);
          const s = m?.stats;
          if (!m || !s) return undefined;
          last = `${ReplicationState[m.state]}, health ${Health[m.health]}, processed ${s.processedSequence} of ${s.capturedSequence} captured`;
          const ok = m.state === ReplicationState.REPLICATION_STATE_PROTECTED && m.health !== Health.HEALTH_CRITICAL && s.processedSequence >= s.capturedSequence;
          return ok ? m : undefined;
        },
        { timeoutMs: this.ctx.healthyTimeoutMs, intervalMs: 500 },
      );
      return `protected, caught up at sequence ${m.stats!.processedSequence}, RPO ${m.stats!.rpoSeconds.toFixed(1)} s`;
    } catch {
      throw new Error(`replication of ${name} is not healthy after the cleanup: ${last || "no report"}`);
    }
  }

  /**
   * Generated writes on every machine until stopped, as short generator jobs back to back (the
   * agent's generator runs for a set time). The step ends when the load stops.
   */
  private startWorkload(job: Job, machines: string[], w: RehearsalWorkloadSpec) {
    const { store } = this.ctx;
    const stop = new AbortController();
    let chunks = 0;
    let error: Error | undefined;
    let markStarted: () => void = () => {};
    const started = new Promise<void>((r) => {
      markStarted = r;
    });
    store.updateJobStep(job.jobId, STEP.workload, { state: JobState.JOB_STATE_IN_PROGRESS, message: `${w.name} at ${w.rateBytesPerSecond} B/s per machine` });
    const loop = (async () => {
      try {
        while (!stop.signal.aborted) {
          const running = machines.map((m) =>
            this.ctx.jobs.workload(m, {
              machineId: "",
              profile: w.profile,
              rateBytesPerSecond: w.rateBytesPerSecond,
              iops: 0,
              durationSeconds: WORKLOAD_CHUNK_SECONDS,
              seed: chunks,
              blockSize: w.blockSize,
              diskIndex: 0,
            }),
          );
          markStarted();
          await Promise.all(running.map((j) => this.await(j)));
          chunks++;
        }
      } catch (err) {
        error = err as Error;
      } finally {
        markStarted();
      }
    })();
    return {
      started,
      stop: async () => {
        stop.abort();
        await loop;
        const seconds = chunks * WORKLOAD_CHUNK_SECONDS;
        if (error) {
          store.updateJobStep(job.jobId, STEP.workload, { state: JobState.JOB_STATE_FAILED, message: `the generator failed after ${seconds} s: ${error.message}` });
        } else {
          store.updateJobStep(job.jobId, STEP.workload, {
            state: JobState.JOB_STATE_SUCCEEDED,
            progressPercent: 100,
            message: `${w.name} (${w.profile}, ${w.blockSize} B blocks) at ${w.rateBytesPerSecond} B/s on ${machines.length} machines for ${seconds} s`,
          });
        }
      },
    };
  }

  /** A sub-job that must succeed. */
  private async await(job: Job): Promise<Job> {
    const done = await this.finished(job);
    if (done.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${done.type} failed: ${done.error}`);
    return done;
  }

  private finished(job: Job): Promise<Job> {
    return pollUntil(
      `job ${job.jobId}`,
      () => {
        const j = this.ctx.store.getJob(job.jobId);
        if (!j) throw new Error(`job ${job.jobId} disappeared`);
        return j.state === JobState.JOB_STATE_IN_PROGRESS || j.state === JobState.JOB_STATE_NOT_STARTED ? undefined : j;
      },
      { intervalMs: 200 },
    );
  }

  private buildReport(job: Job, spec: PlanSpec, o: RehearsalOptions, started: Date, summary: RunSummary | undefined, proofs: Map<string, ReportProof[]>): RehearsalReport {
    const { store } = this.ctx;
    const current = store.getJob(job.jobId)!;
    const steps: ReportStep[] = current.steps.map((s) => ({
      name: s.name,
      group: s.group,
      machine: s.machine || null,
      state: stateLabel(s.state),
      startedAt: s.startTime?.toISOString() ?? null,
      endedAt: s.endTime?.toISOString() ?? null,
      message: s.message || null,
      output: s.output || null,
    }));
    const rpoTarget = spec.targets.rpoSeconds ?? null;
    const rtoTarget = spec.targets.rtoSeconds ?? null;
    const machines: ReportMachine[] = spec.groups.flatMap((g) =>
      g.machines.map((name) => {
        const s = summary?.machines.find((m) => m.name === name);
        const rpoSeconds = s?.rpoSeconds ?? null;
        const rtoSeconds = s?.rtoSeconds ?? null;
        return {
          name,
          group: g.name,
          recoveryPointId: s?.recoveryPointId ?? "",
          sequence: s?.sequence ?? 0,
          rpoSeconds,
          rtoSeconds,
          rpoMet: targetMet(rpoTarget, rpoSeconds),
          rtoMet: targetMet(rtoTarget, rtoSeconds),
          proofs: proofs.get(name) ?? [],
        };
      }),
    );
    const targets = {
      rpoSeconds: rpoTarget,
      rtoSeconds: rtoTarget,
      rpoMet: machines.every((m) => m.rpoMet),
      rtoMet: machines.every((m) => m.rtoMet),
    };
    const failures = failuresOf({ steps, machines, targets });
    // Every machine must have been proved: a rehearsal that proved nothing did not pass.
    for (const m of machines) if (m.proofs.length === 0) failures.push(`${m.name}: no disk was proved`);
    return {
      runId: job.jobId,
      plan: spec.name,
      cycle: o.cycle,
      result: failures.length === 0 ? "passed" : "failed",
      failures,
      scheduled: o.scheduled,
      network: o.network,
      workload: o.workload ?? null,
      startedAt: started.toISOString(),
      endedAt: new Date().toISOString(),
      targets,
      steps,
      machines,
      rpoSamples: rpoSeries(this.ctx.samples(started), spec.groups.flatMap((g) => g.machines)),
    };
  }

  /** The three files under the server's report directory (scheduled runs are read from there). */
  private writeFiles(report: RehearsalReport): void {
    const dir = this.reportDir(report.runId);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileAtomicSync(join(dir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
      writeFileAtomicSync(join(dir, "junit.xml"), renderJunit(report));
      writeFileAtomicSync(join(dir, "report.html"), renderRehearsalHtml(report));
    } catch (err) {
      // The report stays in the run's job result; srlab rehearse writes its own copy from there.
      this.ctx.logger.warn("could not write the rehearsal report files", { runId: report.runId, dir, error: (err as Error).message });
    }
  }
}

function proofsOf(step: string, r: VerifyResult): ReportProof[] {
  return r.disks.map((d) => ({
    step,
    disk: d.index,
    expected: d.expected,
    actual: d.actual,
    ok: d.ok,
    sequence: r.sequence,
    ranges: (d.ranges as ByteRange[]).map(formatByteRange),
  }));
}

function mismatchLine(r: VerifyResult): string {
  return r.disks
    .filter((d) => !d.ok)
    .map((d) => `${r.machine} disk ${d.index} differs from the source at sequence ${r.sequence}: ${d.ranges.map(formatByteRange).join(", ") || "whole disk"}`)
    .join("; ");
}

/** Per machine, its RPO in each sample of the run (null where a sample lacks it). */
function rpoSeries(samples: TelemetrySample[], names: string[]): RehearsalReport["rpoSamples"] {
  const t = samples.map((s) => Math.round((s.time?.getTime() ?? 0) / 100) / 10);
  const machines: Record<string, Array<number | null>> = {};
  for (const name of names) machines[name] = samples.map((s) => s.machines.find((m) => m.name === name)?.rpoSeconds ?? null);
  return { t, machines };
}

function stateLabel(state: JobState): string {
  return (JobState[state] ?? "JOB_STATE_UNSPECIFIED").replace(/^JOB_STATE_/, "").toLowerCase().replace(/_/g, "-");
}

function parseJson<T>(text: string): T | undefined {
  try {
    return text ? (JSON.parse(text) as T) : undefined;
  } catch {
    return undefined;
  }
}

function parseReport(text: string): RehearsalReport | undefined {
  const r = parseJson<RehearsalReport>(text);
  return r && Array.isArray(r.steps) && Array.isArray(r.machines) ? r : undefined;
}
