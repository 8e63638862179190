import { jobTypes, rehearsalResults, workloadProfiles } from "../../common/enum-names/index.js";
import { JobType } from "../../proto/index.js";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../../common/async/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { writeFileAtomicSync } from "../../common/fs/index.js";
import { Health, type Job, type JobResult, JobState, ReplicationState, type VerifyResult, VerifyTarget, type WorkloadCommand } from "../../proto/index.js";
import { JobRunner } from "../job-runner.js";
import { planGroupName } from "./plan-runner.js";
import type { PlanSpec } from "./plan-spec.js";
import { buildRehearsalReport, type Findings, mismatchLine, proofsOf } from "./rehearsal-findings.js";
import { renderRehearsalHtml } from "./rehearsal-html.js";
import { type RehearsalLoad, startRehearsalLoad } from "./rehearsal-load.js";
import { type RehearsalReport, renderJunit } from "./rehearsal-report.js";
import type { RehearsalContext, RehearsalOptions, RehearsalWorkloadSpec } from "./rehearsal-context.js";
import { REHEARSAL_GROUP, STEP } from "./rehearsal-steps.js";

/** How long the full cycle writes on each disk of a machine running in Azure. */
const AZURE_WRITE_SECONDS = 3;
/** The rate of those writes when the rehearsal has no --workload. */
const AZURE_WRITE_RATE = 1_000_000;
/** The report file kept with a rehearsal's job. */
const REPORT_JSON = "report.json";

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
    if (o.cycle !== "test" && o.cycle !== "full") throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `--cycle must be test or full, got "${o.cycle}"`);
    if (o.cycle === "full" && o.scheduled) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a full cycle fails production over and back: it never runs on a schedule");
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
      ...(o.cycle === "full" ? this.fullCycleSteps(spec, o) : []),
    ];
    const job = store.createPlanRun(
      { type: JobType.JOB_TYPE_REHEARSAL, machineId: "", steps },
      { planName: spec.name, operation: `rehearsal-${o.cycle}`, optionsJson: JSON.stringify(o) },
    );
    this.jobs.run(job, () => this.cycle(job, spec, o));
    return job;
  }

  /** After the test cycle: over to Azure, writes there, back, and protected to Azure again. */
  private fullCycleSteps(spec: PlanSpec, o: RehearsalOptions): Array<{ name: string; group: string; machine?: string }> {
    const { runner } = this.ctx;
    const perMachine = (name: (m: string) => string) => spec.groups.flatMap((g) => g.machines.map((m) => ({ name: name(m), group: g.name, machine: m })));
    return [
      ...(o.workload ? [{ name: STEP.workloadUntilFailover, group: REHEARSAL_GROUP }] : []),
      ...runner.steps(spec, "failover", `${STEP.failover}: `),
      ...perMachine(STEP.verifyFailover),
      ...runner.steps(spec, "commit", `${STEP.commitFailover}: `),
      ...perMachine(STEP.runningInAzure),
      ...perMachine(STEP.writesInAzure),
      ...runner.steps(spec, "reprotect", `${STEP.reprotectBack}: `),
      ...runner.steps(spec, "failback", `${STEP.failback}: `),
      ...perMachine(STEP.verifyFailback),
      ...runner.steps(spec, "commit", `${STEP.commitFailback}: `),
      ...runner.steps(spec, "reprotect", `${STEP.reprotectAzure}: `),
      { name: STEP.tagAgain, group: REHEARSAL_GROUP },
      ...perMachine(STEP.verifyReplica),
    ];
  }

  /** The report of an ended rehearsal (its job's report.json), or one clear error. */
  report(runId: string): RehearsalReport {
    const { store } = this.ctx;
    const run = store.getPlanRun(runId);
    if (!run?.operation.startsWith("rehearsal-")) throw new SrlabError(ErrorCode.NOT_FOUND, `no rehearsal ${runId} (srlab plan runs)`);
    const job = store.getJob(runId);
    if (!job || job.state === JobState.JOB_STATE_IN_PROGRESS || job.state === JobState.JOB_STATE_NOT_STARTED) {
      throw new SrlabError(ErrorCode.WRONG_STATE, `rehearsal ${runId} has not ended yet`);
    }
    const report = parseReport(this.reportText(runId));
    if (!report) throw new SrlabError(ErrorCode.NOT_FOUND, `rehearsal ${runId} ended without a report: ${job.error || "no result"}`);
    return report;
  }

  private reportText(runId: string): string {
    try {
      return this.ctx.store.jobReport(runId, REPORT_JSON).content.toString("utf8");
    } catch {
      return "";
    }
  }

  reportDir(runId: string): string {
    return join(this.ctx.reportRoot, runId);
  }

  /** The whole rehearsal: the test cycle, then the full cycle's way over and back when asked for. */
  private async cycle(job: Job, spec: PlanSpec, o: RehearsalOptions): Promise<JobResult> {
    const { logger } = this.ctx;
    const started = new Date();
    const machines = spec.groups.flatMap((g) => g.machines);
    const found: Findings = { proofs: new Map(machines.map((m) => [m, []])), summaries: [] };
    await this.testCycle(job, spec, o, found);
    if (o.cycle === "full" && !found.failure) {
      try {
        await this.fullCycle(job, spec, o, found);
      } catch (err) {
        found.failure ??= err as Error;
      }
    }
    if (found.failure) logger.warn("rehearsal failed", { runId: job.jobId, plan: spec.name, error: found.failure.message });

    const report = buildRehearsalReport(this.ctx.store.getJob(job.jobId)!, spec, o, started, found, this.ctx.samples(started));
    this.writeFiles(report);
    // The whole report stays with the job (srlab rehearse and the dashboard read it there); the
    // job's result is the verdict.
    this.ctx.store.attachJobReport(job.jobId, REPORT_JSON, Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
    const result: JobResult = {
      kind: { $case: "rehearsal", value: { result: rehearsalResults.parse(report.result), scheduled: report.scheduled, failures: report.failures } },
    };
    if (report.result === "failed") {
      throw Object.assign(new Error(`rehearsal of ${spec.name} failed: ${report.failures[0] ?? found.failure?.message ?? "see the report"}`), { result });
    }
    return result;
  }

  private async testCycle(job: Job, spec: PlanSpec, o: RehearsalOptions, found: Findings): Promise<void> {
    const { store, runner } = this.ctx;
    const machines = spec.groups.flatMap((g) => g.machines);
    const load = o.workload ? this.startLoad(job, machines, o.workload, STEP.workload) : undefined;
    const run = { point: "", shutdownSource: false, network: o.network, autoApprove: o.autoApprove, stopOnFailure: true };
    try {
      if (load) await load.started;
      run.point = (await this.jobs.step(job, STEP.tag, () => this.tag(spec))).selector;
      found.summaries.push(await runner.execute(job, spec, "test-failover", run, `${STEP.testFailover}: `));
      await this.verifyEach(job, machines, STEP.verify, (m) => this.verify(m, VerifyTarget.VERIFY_TARGET_TEST_FAILOVER), found);
    } catch (err) {
      found.failure ??= err as Error;
    }
    // A test failover is never left behind, whatever failed before: the plan's cleanup, in
    // order, of the machines that have one.
    try {
      const leftover = spec.groups
        .map((g) => ({ ...g, machines: g.machines.filter((m) => store.getMachine(m)?.testFailover) }))
        .filter((g) => g.machines.length > 0);
      if (leftover.length) await runner.execute(job, { ...spec, groups: leftover }, "cleanup", run, `${STEP.cleanup}: `);
    } catch (err) {
      found.failure ??= err as Error;
    }
    await load?.stop();
    if (!found.failure) {
      for (const m of machines) {
        await this.jobs.step(job, STEP.healthy(m), () => this.healthy(m)).catch((err: Error) => {
          found.failure ??= err;
        });
      }
    }
  }

  /**
   * Planned failover with the source shut down → proof (the failed-over disks are the source's
   * final state) → commit → the machines run in Azure and write there → reprotect to on-premises
   * → failback → proof (on-premises = the Azure disks) → commit → reprotect to Azure → app point
   * → proof (the replica = the source at that point). Stops at the first failure: the report
   * says where the machines were left.
   */
  private async fullCycle(job: Job, spec: PlanSpec, o: RehearsalOptions, found: Findings): Promise<void> {
    const { runner } = this.ctx;
    const machines = spec.groups.flatMap((g) => g.machines);
    const run = { point: "latest", shutdownSource: true, network: "", autoApprove: o.autoApprove, stopOnFailure: true };
    if (o.workload) {
      // The application writes until the failover; stopping the generator is the last thing
      // before the source is shut down, so the RPO measured is that of a running application.
      const load = this.startLoad(job, machines, o.workload, STEP.workloadUntilFailover);
      await load.started;
      await load.stop();
      if (load.error) throw load.error;
    }
    found.summaries.push(await runner.execute(job, spec, "failover", run, `${STEP.failover}: `));
    await this.verifyEach(job, machines, STEP.verifyFailover, (m) => this.verify(m, VerifyTarget.VERIFY_TARGET_FAILED_OVER), found);
    if (found.failure) return;
    await runner.execute(job, spec, "commit", run, `${STEP.commitFailover}: `);
    await allEnded(machines.map((m) => this.jobs.step(job, STEP.runningInAzure(m), () => this.runningInAzure(job, m))));
    await allEnded(machines.map((m) => this.jobs.step(job, STEP.writesInAzure(m), () => this.writeInAzure(m, o, found))));
    await runner.execute(job, spec, "reprotect", run, `${STEP.reprotectBack}: `);
    found.summaries.push(await runner.execute(job, spec, "failback", run, `${STEP.failback}: `));
    await this.verifyEach(job, machines, STEP.verifyFailback, (m) => this.ctx.azure.verifyFailback(m), found);
    if (found.failure) return;
    await runner.execute(job, spec, "commit", run, `${STEP.commitFailback}: `);
    await runner.execute(job, spec, "reprotect", run, `${STEP.reprotectAzure}: `);
    const tagged = await this.jobs.step(job, STEP.tagAgain, () => this.tag(spec));
    await this.verifyEach(job, machines, STEP.verifyReplica, (m) => this.verify(m, VerifyTarget.VERIFY_TARGET_POINT, tagged.points.get(m)), found);
  }

  /**
   * One verify step per machine, each disk's proof into the report. Every machine is proved,
   * even after one differs, so the report names every bad disk; the first failure is kept.
   */
  private async verifyEach(job: Job, machines: string[], step: (m: string) => string, check: (m: string) => Promise<VerifyResult>, found: Findings): Promise<void> {
    for (const m of machines) {
      await this.jobs
        .step(job, step(m), async () => {
          const result = await check(m);
          found.proofs.get(m)!.push(...proofsOf(step(m), result));
          if (!result.ok) throw new Error(mismatchLine(result));
          return `${result.disks.length} disk${result.disks.length === 1 ? "" : "s"} equal to ${result.target === VerifyTarget.VERIFY_TARGET_FAILED_BACK ? "the Azure disks" : `the source at sequence ${result.sequence}`}`;
        })
        .catch((err: Error) => {
          found.failure ??= err;
        });
    }
  }

  /** Waits for the machine's agent in Azure (the lab's srlab rehearse starts it, as srlab commit does). */
  private async runningInAzure(job: Job, machine: string): Promise<string> {
    const { store } = this.ctx;
    store.updateJobStep(job.jobId, STEP.runningInAzure(machine), {
      state: JobState.JOB_STATE_IN_PROGRESS,
      message: "waiting for the Azure machine's agent to connect (in a lab, srlab rehearse starts it)",
    });
    try {
      await pollUntil(`${machine} to run in Azure`, () => (this.ctx.azure.running(machine) ? true : undefined), {
        timeoutMs: this.ctx.azureStartTimeoutMs,
        intervalMs: 250,
      });
    } catch {
      throw new Error(`${machine}'s agent in Azure did not connect within ${Math.round(this.ctx.azureStartTimeoutMs / 1000)} s (start it: srlab commit ${machine} starts it in a lab)`);
    }
    return `${machine} runs in Azure on ${store.getMachine(machine)?.azureDisks.length ?? 0} failed-over disk(s)`;
  }

  /**
   * The machine running in Azure writes each of its disks (its own generator, through its
   * capturing export into the page blobs), then each disk's fingerprint is taken from storage:
   * the Azure state the failback must bring home. Writes that changed nothing fail the step.
   */
  private async writeInAzure(machine: string, o: RehearsalOptions, found: Findings): Promise<string> {
    const disks = this.ctx.store.getMachine(machine)?.azureDisks ?? [];
    let seed = 1000;
    for (const d of disks) {
      await this.await(
        this.ctx.jobs.workload(
          machine,
          {
            machineId: "",
            profile: workloadProfiles.parse(o.workload?.profile ?? "random"),
            rateBytesPerSecond: o.workload?.rateBytesPerSecond ?? AZURE_WRITE_RATE,
            iops: 0,
            durationSeconds: AZURE_WRITE_SECONDS,
            seed: seed++,
            blockSize: o.workload?.blockSize ?? 4096,
            diskIndex: d.index,
          },
          true,
        ),
      );
    }
    const after = await this.ctx.azure.fingerprints(machine);
    const before = found.proofs.get(machine)!.filter((p) => p.step === STEP.verifyFailover(machine));
    const unchanged = after.filter((a) => before.some((b) => b.disk === a.index && b.actual === a.fingerprint));
    if (unchanged.length) throw new Error(`the writes in Azure left disk ${unchanged.map((u) => u.index).join(", ")} of ${machine} as it failed over`);
    return `${AZURE_WRITE_SECONDS} s of writes on ${after.length} disk(s); Azure disk fingerprint ${after.map((a) => `${a.index}: ${a.fingerprint}`).join(", ")}`;
  }

  /**
   * A group-consistent app point for a plan that is a replication group; else one app point per
   * machine. `selector` is what a plan run takes as --point; `points` each machine's point.
   */
  private async tag(spec: PlanSpec): Promise<{ selector: string; points: Map<string, string> }> {
    const { groups } = this.ctx;
    const machines = spec.groups.flatMap((g) => g.machines);
    const tagName = `rehearsal-${spec.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    if (spec.replicationGroup) {
      const done = await this.await(groups.groupPoint(planGroupName(spec.name), tagName));
      const kind = done.result?.kind;
      if (kind?.$case !== "groupPoint") throw new Error(`group point job ${done.jobId} ended without its point`);
      const id = kind.value.groupPointId;
      return { selector: id, points: new Map(machines.map((m) => [m, id])) };
    }
    const done = await Promise.all(machines.map((m) => this.await(this.ctx.jobs.appConsistentPoint(m, tagName))));
    const pointOf = (j: Job) => (j.result?.kind?.$case === "appConsistentPoint" ? j.result.kind.value.recoveryPointId : "");
    const points = new Map(machines.map((m, i) => [m, pointOf(done[i]!)]));
    return { selector: "latest-app-consistent", points };
  }

  private async verify(machine: string, target: VerifyTarget, recoveryPointId?: string): Promise<VerifyResult> {
    const job = this.ctx.jobs.verify(machine, target, recoveryPointId);
    const done = await this.finished(job);
    const kind = done.result?.kind;
    if (kind?.$case !== "verify") throw new Error(`verify ${machine}: ${done.error || "no result"}`);
    return kind.value;
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

  /** Generated writes on every machine until stopped; each load of a run starts from its own seeds. */
  private startLoad(job: Job, machines: string[], w: RehearsalWorkloadSpec, step: string): RehearsalLoad {
    const deps = { store: this.ctx.store, workload: (m: string, spec: WorkloadCommand) => this.ctx.jobs.workload(m, spec), awaitJob: (j: Job) => this.await(j) };
    return startRehearsalLoad(deps, job, machines, w, step, step === STEP.workload ? 0 : 1_000_000);
  }

  /** A sub-job that must succeed. */
  private async await(job: Job): Promise<Job> {
    const done = await this.finished(job);
    if (done.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${jobTypes.name(done.type)} failed: ${done.error}`);
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

  /** The three files under the server's report directory (scheduled runs are read from there). */
  private writeFiles(report: RehearsalReport): void {
    const dir = this.reportDir(report.runId);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileAtomicSync(join(dir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
      writeFileAtomicSync(join(dir, "junit.xml"), renderJunit(report));
      writeFileAtomicSync(join(dir, "report.html"), renderRehearsalHtml(report));
    } catch (err) {
      // The report stays with the run's job; srlab rehearse writes its own copy from there.
      this.ctx.logger.warn("could not write the rehearsal report files", { runId: report.runId, dir, error: (err as Error).message });
    }
  }
}

/** Waits for every machine's step to end (so none is reported still in progress), then throws the first failure. */
async function allEnded(steps: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(steps)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
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
