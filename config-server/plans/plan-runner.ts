
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jobTypes, namedRecoveryPoints, planOperations } from "../../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Logger } from "../../common/logger.js";
import { type Job, type JobResult, JobState, type RecoveryPointSelector, ResumeAction } from "../../proto/index.js";
import type { GroupPoints } from "../group-points.js";
import type { ConfigStore } from "../store/index.js";
import type { PlanAction, PlanOperationName, PlanSpec } from "./plan-spec.js";
import { runCommand, scriptContext } from "./plan-script.js";

/** The single-machine operations a plan run drives; each returns the job it started. */
export interface MachineOperations {
  failover(machine: string, o: { selector?: RecoveryPointSelector; test: boolean; shutdownSource: boolean; network: string }): Job;
  cleanup(machine: string): Job;
  commit(machine: string): Job;
  failback(machine: string): Job;
  reprotect(machine: string): Job;
}

export interface PlanRunnerContext {
  store: ConfigStore;
  ops: MachineOperations;
  groups: GroupPoints;
  logger: Logger;
  /** Context files for script actions go under here, per run. */
  runDir: string;
}

export interface RunOptions {
  point: string;
  shutdownSource: boolean;
  network: string;
  autoApprove: boolean;
  /** A failed step ends the run at once instead of waiting for resume (rehearsals). */
  stopOnFailure?: boolean;
}

/** The replication group a plan with `replicationGroup: true` keeps for its machines. */
export const planGroupName = (plan: string) => `plan-${plan}`;

interface Decision {
  action: ResumeAction;
  comment: string;
}

class RunCancelled extends Error {}

/**
 * Runs a plan: groups in order, the machines of a group in parallel, pre-actions before and
 * post-actions after them. Every action and machine is a step of the run's job with its group,
 * machine, state and times. A failed step, or a manual action, waits for `srlab plan resume`.
 */
export class PlanRunner {
  /** Steps waiting for a decision, per run, oldest first. */
  private readonly waiting = new Map<string, Array<{ step: string; decide: (d: Decision) => void }>>();

  constructor(private readonly ctx: PlanRunnerContext) {}

  /** Step names of one run, with their placement, in execution order. */
  steps(spec: PlanSpec, op: PlanOperationName, prefix = ""): Array<{ name: string; group: string; machine?: string }> {
    const out: Array<{ name: string; group: string; machine?: string }> = [];
    for (const g of spec.groups) {
      for (const [i, a] of applicable(g.pre, op).entries()) out.push({ name: `${prefix}${g.name}: pre ${i + 1} (${a.kind})`, group: g.name });
      for (const m of g.machines) out.push({ name: `${prefix}${g.name}: ${op} ${m}`, group: g.name, machine: m });
      for (const [i, a] of applicable(g.post, op).entries()) out.push({ name: `${prefix}${g.name}: post ${i + 1} (${a.kind})`, group: g.name });
    }
    return out;
  }

  /** Runs the plan inside `job` (a plan run, or a rehearsal with its own prefix). */
  async execute(job: Job, spec: PlanSpec, op: PlanOperationName, o: RunOptions, prefix = ""): Promise<RunSummary> {
    const selectors = this.selectors(spec, op, o.point);
    const results = new Map<string, Job>();
    for (const g of spec.groups) {
      for (const [i, a] of applicable(g.pre, op).entries()) {
        await this.action(job, spec, op, g.name, `${prefix}${g.name}: pre ${i + 1} (${a.kind})`, a, o);
      }
      await Promise.all(
        g.machines.map((m) =>
          this.step(job, `${prefix}${g.name}: ${op} ${m}`, o, async () => {
            const sub = this.startMachineOperation(m, op, o, selectors.get(m));
            const done = await this.waitJob(sub);
            results.set(m, done);
            return { message: summarize(op, done) };
          }),
        ),
      );
      for (const [i, a] of applicable(g.post, op).entries()) {
        await this.action(job, spec, op, g.name, `${prefix}${g.name}: post ${i + 1} (${a.kind})`, a, o);
      }
    }
    return this.summary(spec, op, results);
  }

  /** Applies an operator's decision to the oldest waiting step of a run. */
  resume(runId: string, decision: Decision): string {
    const list = this.waiting.get(runId);
    const next = list?.shift();
    if (!next) throw new SrlabError(ErrorCode.WRONG_STATE, `run ${runId} is not waiting for a decision`);
    if (list!.length === 0) this.waiting.delete(runId);
    next.decide(decision);
    return next.step;
  }

  isWaiting(runId: string): boolean {
    return (this.waiting.get(runId)?.length ?? 0) > 0;
  }

  /** Cancels a run's waiting steps (the run is stopped). */
  cancel(runId: string): void {
    for (const w of this.waiting.get(runId) ?? []) w.decide({ action: ResumeAction.RESUME_ACTION_CANCEL, comment: "" });
    this.waiting.delete(runId);
  }

  private decision(runId: string, step: string): Promise<Decision> {
    return new Promise((decide) => {
      const list = this.waiting.get(runId) ?? [];
      list.push({ step, decide });
      this.waiting.set(runId, list);
    });
  }

  /** One step: on failure it waits for retry, skip or cancel. */
  private async step(job: Job, name: string, o: RunOptions, fn: () => Promise<{ message?: string; output?: string }>): Promise<void> {
    const { store } = this.ctx;
    for (;;) {
      store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 0, message: "" });
      try {
        const r = await fn();
        store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_SUCCEEDED, message: r.message ?? "", output: r.output });
        return;
      } catch (err) {
        if (err instanceof RunCancelled) throw err;
        const output = (err as { output?: string }).output;
        store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_FAILED, message: (err as Error).message, output });
        if (o.stopOnFailure) throw new Error(`step "${name}" failed: ${(err as Error).message}`);
        this.ctx.logger.warn("plan step failed; waiting for srlab plan resume --retry|--skip", { runId: job.jobId, step: name, error: (err as Error).message });
        const d = await this.decision(job.jobId, name);
        if (d.action === ResumeAction.RESUME_ACTION_RETRY) continue;
        if (d.action === ResumeAction.RESUME_ACTION_SKIP) {
          store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_SKIPPED, message: `skipped after failure: ${(err as Error).message}${d.comment ? ` (${d.comment})` : ""}` });
          return;
        }
        throw new RunCancelled(`run cancelled at step ${name}`);
      }
    }
  }

  private async action(job: Job, spec: PlanSpec, op: PlanOperationName, group: string, name: string, a: PlanAction, o: RunOptions): Promise<void> {
    const { store } = this.ctx;
    if (a.kind === "manual") {
      if (o.autoApprove) {
        store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_IN_PROGRESS, message: a.message });
        store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_SUCCEEDED, message: a.message, output: "auto-approved" });
        return;
      }
      store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_WAITING_FOR_MANUAL_ACTION, message: a.message });
      const d = await this.decision(job.jobId, name);
      if (d.action === ResumeAction.RESUME_ACTION_CANCEL) throw new RunCancelled(`run cancelled at manual action ${name}`);
      const state = d.action === ResumeAction.RESUME_ACTION_SKIP ? JobState.JOB_STATE_SKIPPED : JobState.JOB_STATE_SUCCEEDED;
      store.updateJobStep(job.jobId, name, { state, message: a.message, output: d.comment || (state === JobState.JOB_STATE_SKIPPED ? "skipped" : "approved") });
      return;
    }
    await this.step(job, name, o, () => this.script(job, spec, op, group, name, a, o));
  }

  /** Runs a script action with the run's context in its environment and in a JSON file. */
  private async script(job: Job, spec: PlanSpec, op: PlanOperationName, group: string, step: string, a: PlanAction, o: RunOptions): Promise<{ message: string; output: string }> {
    const context = scriptContext(this.ctx.store, job, spec, op, group, o.shutdownSource);
    const dir = join(this.ctx.runDir, job.jobId);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `context-${step.replace(/[^A-Za-z0-9._-]+/g, "_")}.json`);
    writeFileSync(file, `${JSON.stringify(context, null, 2)}\n`);
    const env = {
      ...process.env,
      SRLAB_PLAN: spec.name,
      SRLAB_RUN_ID: job.jobId,
      SRLAB_OPERATION: op,
      SRLAB_FAILOVER_TYPE: context.failoverType,
      SRLAB_DIRECTION: context.direction,
      SRLAB_GROUP: group,
      SRLAB_CONTEXT_FILE: file,
    };
    const { code, output, timedOut } = await runCommand(a.script, spec.baseDir, env, a.timeoutSeconds * 1000);
    if (timedOut) throw Object.assign(new Error(`script ${a.script} timed out after ${a.timeoutSeconds} s`), { output });
    if (code !== 0) throw Object.assign(new Error(`script ${a.script} exited with ${code}`), { output });
    return { message: `script ${a.script} succeeded`, output };
  }


  /** Per machine, the point a failover goes to: one cut for the whole plan when it is a group. */
  private selectors(spec: PlanSpec, op: PlanOperationName, point: string): Map<string, RecoveryPointSelector> {
    const out = new Map<string, RecoveryPointSelector>();
    if (op !== "failover" && op !== "test-failover") return out;
    const { store } = this.ctx;
    const machines = spec.groups.flatMap((g) => g.machines);
    const requested = point || "latest";
    const groupish = requested === "latest-group-consistent" || requested === "latest-group-app-consistent" || requested.startsWith("gp-");
    if (!groupish) {
      const selector: RecoveryPointSelector["selector"] = requested.startsWith("latest")
        ? { $case: "named", value: namedRecoveryPoints.parse(requested) }
        : { $case: "recoveryPointId", value: requested };
      for (const m of machines) out.set(m, { selector });
      return out;
    }
    if (!spec.replicationGroup && !requested.startsWith("gp-")) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `plan ${spec.name} is not a replication group (replicationGroup: true); ${requested} needs one`);
    }
    const gp = requested.startsWith("gp-") ? store.getGroupPoint(requested) : store.listGroupPoints(planGroupName(spec.name)).at(-1);
    if (!gp) throw new SrlabError(ErrorCode.NOT_FOUND, `plan ${spec.name} has no group-consistent point yet (srlab group tag ${planGroupName(spec.name)})`);
    for (const name of machines) {
      const m = store.getMachine(name);
      const member = gp.members.find((x) => x.machineId === m?.machineId);
      const rp = member && store.listRecoveryPoints(member.machineId).find((p) => p.tagName === gp.tagName && p.sequence === member.sequence);
      if (!rp) throw new SrlabError(ErrorCode.NOT_FOUND, `group point ${gp.groupPointId} has no recovery point for ${name}`);
      out.set(name, { selector: { $case: "recoveryPointId", value: rp.recoveryPointId } });
    }
    return out;
  }

  private startMachineOperation(machine: string, op: PlanOperationName, o: RunOptions, selector: RecoveryPointSelector | undefined): Job {
    const { ops } = this.ctx;
    switch (op) {
      case "test-failover":
        return ops.failover(machine, { selector, test: true, shutdownSource: false, network: o.network });
      case "failover":
        return ops.failover(machine, { selector, test: false, shutdownSource: o.shutdownSource, network: o.network });
      case "cleanup":
        return ops.cleanup(machine);
      case "commit":
        return ops.commit(machine);
      case "failback":
        return ops.failback(machine);
      case "reprotect":
        return ops.reprotect(machine);
    }
  }

  private async waitJob(job: Job): Promise<Job> {
    for (;;) {
      const j = this.ctx.store.getJob(job.jobId);
      if (!j) throw new Error(`job ${job.jobId} disappeared`);
      if (j.state === JobState.JOB_STATE_SUCCEEDED) return j;
      if (j.state === JobState.JOB_STATE_FAILED || j.state === JobState.JOB_STATE_CANCELLED) throw new Error(`${jobTypes.name(j.type)} failed: ${j.error}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Achieved RPO/RTO per machine (from its failover, or from the failback job of this run), for
   * the run's result and the targets.
   */
  summary(spec: PlanSpec, op: PlanOperationName, results?: Map<string, Job>): RunSummary {
    const { store } = this.ctx;
    const machines = spec.groups.flatMap((g) =>
      g.machines.map((name) => {
        const m = store.getMachine(name);
        if (op === "failback") {
          const kind = results?.get(name)?.result?.kind;
          const r = kind?.$case === "failback" ? kind.value : undefined;
          return {
            name,
            group: g.name,
            recoveryPointId: r?.recoveryPointId ?? "",
            sequence: r?.lastSequence ?? 0,
            rpoSeconds: r ? r.achievedRpoSeconds : null,
            rtoSeconds: r ? r.rtoSeconds : null,
          };
        }
        const info = op === "test-failover" ? m?.testFailover : op === "failover" ? m?.failover : undefined;
        return {
          name,
          group: g.name,
          recoveryPointId: info?.recoveryPointId ?? "",
          sequence: info?.sequence ?? 0,
          rpoSeconds: info?.achievedRpoSeconds ?? null,
          rtoSeconds: info?.rtoSeconds ?? null,
        };
      }),
    );
    const worst = (k: "rpoSeconds" | "rtoSeconds") => {
      const values = machines.map((m) => m[k]).filter((v): v is number => v !== null);
      return values.length ? Math.max(...values) : null;
    };
    const rpo = worst("rpoSeconds");
    const rto = worst("rtoSeconds");
    return {
      plan: spec.name,
      operation: op,
      machines,
      targets: {
        rpoSeconds: spec.targets.rpoSeconds ?? null,
        rtoSeconds: spec.targets.rtoSeconds ?? null,
        rpoMet: spec.targets.rpoSeconds === undefined || rpo === null ? null : rpo <= spec.targets.rpoSeconds,
        rtoMet: spec.targets.rtoSeconds === undefined || rto === null ? null : rto <= spec.targets.rtoSeconds,
      },
    };
  }

  static isCancel(err: unknown): boolean {
    return err instanceof RunCancelled;
  }
}

/** A run's figures as the typed result of its job (null figures are left unset). */
export function planRunResult(s: RunSummary): JobResult {
  const unset = <T>(v: T | null): T | undefined => (v === null ? undefined : v);
  return {
    kind: {
      $case: "planRun",
      value: {
        plan: s.plan,
        operation: planOperations.parse(s.operation),
        machines: s.machines.map((m) => ({ ...m, rpoSeconds: unset(m.rpoSeconds), rtoSeconds: unset(m.rtoSeconds) })),
        targets: {
          rpoSeconds: unset(s.targets.rpoSeconds),
          rtoSeconds: unset(s.targets.rtoSeconds),
          rpoMet: unset(s.targets.rpoMet),
          rtoMet: unset(s.targets.rtoMet),
        },
      },
    },
  };
}

export interface RunSummary {
  plan: string;
  operation: PlanOperationName;
  machines: Array<{ name: string; group: string; recoveryPointId: string; sequence: number; rpoSeconds: number | null; rtoSeconds: number | null }>;
  targets: { rpoSeconds: number | null; rtoSeconds: number | null; rpoMet: boolean | null; rtoMet: boolean | null };
}

function applicable(actions: PlanAction[], op: PlanOperationName): PlanAction[] {
  return actions.filter((a) => a.on.includes(op));
}

function summarize(op: PlanOperationName, job: Job): string {
  const kind = job.result?.kind;
  if ((op === "failover" || op === "test-failover") && kind?.$case === "failover") {
    const r = kind.value;
    return `sequence ${r.sequence}, RPO ${r.achievedRpoSeconds.toFixed(1)} s, RTO ${r.rtoSeconds.toFixed(1)} s (job ${job.jobId})`;
  }
  return `job ${job.jobId} succeeded`;
}
