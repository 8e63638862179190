import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { planOperations } from "../../common/enum-names/index.js";
import { type Job, JobState, type PlanRun, ResumeAction } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { enumLabel, printJson, printTable, ProgressLine } from "../output.js";
import { resultDocument } from "./job-result.js";

/** The operations `srlab plan run --op` takes (rehearsals start with `srlab rehearse`). */
const RUNNABLE: string[] = planOperations.names.filter((n) => !n.startsWith("rehearsal-"));

export function planApply(dir: string, o: { file: string; json?: boolean }) {
  const path = resolve(o.file);
  let source: string;
  try {
    source = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read plan file ${o.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return AdminClient.using(dir, async (c) => {
    const { plan, created } = await c.callOn(c.plans, c.plans.applyPlan, { source, fileName: basename(path), baseDir: dirname(path) });
    if (o.json) printJson({ name: plan!.name, created, groups: plan!.groupCount, machines: plan!.machineCount });
    else console.log(`plan ${plan!.name} ${created ? "created" : "updated"}: ${plan!.groupCount} groups, ${plan!.machineCount} machines`);
  });
}

export function planList(dir: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { plans } = await c.callOn(c.plans, c.plans.listPlans, {});
    if (o.json) printJson(plans.map((p) => ({ name: p.name, groups: p.groupCount, machines: p.machineCount, updatedAt: p.updatedAt?.toISOString() ?? null })));
    else printTable(["PLAN", "GROUPS", "MACHINES", "UPDATED"], plans.map((p) => [p.name, p.groupCount, p.machineCount, p.updatedAt?.toISOString() ?? ""]));
  });
}

export function planShow(dir: string, name: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { plan } = await c.callOn(c.plans, c.plans.getPlan, { name });
    if (o.json) printJson({ name: plan!.name, spec: JSON.parse(plan!.specJson), source: plan!.source });
    else process.stdout.write(plan!.source.endsWith("\n") ? plan!.source : `${plan!.source}\n`);
  });
}

export function planDelete(dir: string, name: string) {
  return AdminClient.using(dir, async (c) => {
    await c.callOn(c.plans, c.plans.deletePlan, { name });
    console.log(`plan ${name} deleted`);
  });
}

export function runDocument(r: PlanRun) {
  const job = r.job;
  return {
    runId: r.runId,
    plan: r.plan,
    operation: planOperations.name(r.operation),
    state: job ? enumLabel(JobState, job.state, "JOB_STATE_") : "unknown",
    startedAt: job?.startTime?.toISOString() ?? null,
    endedAt: job?.endTime?.toISOString() ?? null,
    error: job?.error || null,
    result: resultDocument(job?.result),
    steps: (job?.steps ?? []).map((s) => ({
      name: s.name,
      group: s.group,
      machine: s.machine || null,
      state: enumLabel(JobState, s.state, "JOB_STATE_"),
      startedAt: s.startTime?.toISOString() ?? null,
      endedAt: s.endTime?.toISOString() ?? null,
      message: s.message || null,
      output: s.output || null,
    })),
  };
}

/** Follows a run until it ends or waits for the operator; prints what it waits for. */
async function follow(c: AdminClient, runId: string, show: boolean): Promise<Job> {
  const line = new ProgressLine(show);
  for (;;) {
    const { job } = await c.call(c.client.getJob, { jobId: runId });
    if (!job) throw new Error(`run ${runId} disappeared`);
    const current = job.steps.find((s) => s.state === JobState.JOB_STATE_IN_PROGRESS);
    const waiting = job.steps.find((s) => s.state === JobState.JOB_STATE_WAITING_FOR_MANUAL_ACTION || s.state === JobState.JOB_STATE_FAILED);
    line.update(`plan run: ${job.progressPercent.toFixed(0)}%${current ? ` ${current.name}` : ""}`);
    const ended = job.state !== JobState.JOB_STATE_IN_PROGRESS && job.state !== JobState.JOB_STATE_NOT_STARTED;
    if (ended || (waiting && !current)) {
      line.done();
      return job;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function planRun(dir: string, name: string, o: { op: string; point?: string; shutdownSource?: boolean; network?: string; autoApprove?: boolean; json?: boolean }) {
  if (!RUNNABLE.includes(o.op)) throw new Error(`unknown operation "${o.op}" (${RUNNABLE.join(", ")})`);
  const operation = planOperations.parse(o.op);
  return AdminClient.using(dir, async (c) => {
    const { run } = await c.callOn(c.plans, c.plans.runPlan, {
      name,
      operation,
      point: o.point ?? "",
      shutdownSource: Boolean(o.shutdownSource),
      network: o.network ?? "",
      autoApprove: Boolean(o.autoApprove),
    });
    await finishOrWait(c, run!, Boolean(o.json));
  });
}

async function finishOrWait(c: AdminClient, run: PlanRun, json: boolean): Promise<void> {
  const job = await follow(c, run.runId, !json);
  const doc = runDocument({ ...run, job });
  if (json) printJson(doc);
  else printSteps(doc);
  if (job.state === JobState.JOB_STATE_SUCCEEDED) return;
  const waiting = job.steps.find((s) => s.state === JobState.JOB_STATE_WAITING_FOR_MANUAL_ACTION);
  if (waiting) {
    if (!json) console.log(`run ${run.runId} waits: ${waiting.message} — continue with srlab plan resume ${run.runId} [--comment TEXT]`);
    return;
  }
  const failed = job.steps.find((s) => s.state === JobState.JOB_STATE_FAILED);
  if (failed && job.state === JobState.JOB_STATE_IN_PROGRESS) {
    throw new Error(`step "${failed.name}" failed: ${failed.message} (srlab plan resume ${run.runId} --retry|--skip|--cancel)`);
  }
  throw new Error(`plan run ${run.runId} ${enumLabel(JobState, job.state, "JOB_STATE_")}: ${job.error}`);
}

function printSteps(doc: ReturnType<typeof runDocument>): void {
  printTable(
    ["STEP", "GROUP", "MACHINE", "STATE", "START", "END", "MESSAGE"],
    doc.steps.map((s) => [s.name, s.group, s.machine ?? "", s.state, s.startedAt?.slice(11, 23) ?? "", s.endedAt?.slice(11, 23) ?? "", s.message ?? ""]),
  );
}

export function planResume(dir: string, runId: string, o: { retry?: boolean; skip?: boolean; cancel?: boolean; comment?: string; json?: boolean }) {
  const chosen = [o.retry, o.skip, o.cancel].filter(Boolean).length;
  if (chosen > 1) throw new Error("choose at most one of --retry, --skip, --cancel");
  const action = o.retry
    ? ResumeAction.RESUME_ACTION_RETRY
    : o.skip
      ? ResumeAction.RESUME_ACTION_SKIP
      : o.cancel
        ? ResumeAction.RESUME_ACTION_CANCEL
        : ResumeAction.RESUME_ACTION_APPROVE;
  return AdminClient.using(dir, async (c) => {
    const { run } = await c.callOn(c.plans, c.plans.resumePlanRun, { runId, action, comment: o.comment ?? "" });
    await finishOrWait(c, run!, Boolean(o.json));
  });
}

export function planRuns(dir: string, plan: string | undefined, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { runs } = await c.callOn(c.plans, c.plans.listPlanRuns, { plan: plan ?? "" });
    const docs = runs.map(runDocument);
    if (o.json) printJson(docs);
    else printTable(["RUN", "PLAN", "OPERATION", "STATE", "STARTED", "ENDED"], docs.map((d) => [d.runId, d.plan, d.operation, d.state, d.startedAt ?? "", d.endedAt ?? ""]));
  });
}
