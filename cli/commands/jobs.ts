import { jobTypes } from "../../common/enum-names/index.js";
import { type Job, JobState } from "../../proto/index.js";
import { pollUntil } from "../../common/async/index.js";
import type { AdminClient } from "../admin-client.js";
import { resultDocument } from "./job-result.js";
import { enumLabel, formatBytes, formatTable, ProgressLine } from "../output.js";
import { interruptSignal, LiveView, type Palette, palette, wantsColour, watch } from "../terminal/index.js";

export function jobDocument(job: Job) {
  return {
    jobId: job.jobId,
    type: jobTypes.name(job.type),
    machineId: job.machineId,
    state: enumLabel(JobState, job.state, "JOB_STATE_"),
    progressPercent: job.progressPercent,
    startTime: job.startTime?.toISOString() ?? null,
    endTime: job.endTime?.toISOString() ?? null,
    durationSeconds: job.startTime ? ((job.endTime ?? new Date()).getTime() - job.startTime.getTime()) / 1000 : 0,
    bytesSent: job.bytesSent,
    error: job.error || null,
    result: resultDocument(job.result),
    /** Report files kept with the job; the dashboard serves them at /jobs/<jobId>/<name>. */
    reports: job.reports,
    steps: job.steps.map((s) => ({
      name: s.name,
      state: enumLabel(JobState, s.state, "JOB_STATE_"),
      progressPercent: s.progressPercent,
      message: s.message || null,
    })),
  };
}

const DONE = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

/** Follows a job until it ends, drawing its progress; throws when it failed. */
export async function waitForJob(client: AdminClient, jobId: string, showProgress: boolean): Promise<Job> {
  const line = new ProgressLine(showProgress);
  const ended = async (): Promise<Job | undefined> => {
    const { job } = await client.call(client.client.getJob, { jobId });
    if (!job) throw new Error(`job ${jobId} disappeared`);
    line.update(jobProgressText(job));
    return DONE.has(job.state) ? job : undefined;
  };
  const job = await pollUntil(`job ${jobId}`, ended, { intervalMs: 250 });
  line.done();
  if (job.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${jobTypes.name(job.type)} job ${job.jobId} failed: ${job.error}`);
  return job;
}

/**
 * A running job in one line: its progress, the step at work with its message (what it is doing,
 * e.g. the replay a failover estimated before starting it) and the bytes sent so far.
 */
export function jobProgressText(job: Job): string {
  const step = job.steps.find((s) => s.state === JobState.JOB_STATE_IN_PROGRESS);
  return (
    `${jobTypes.name(job.type)}: ${job.progressPercent.toFixed(0)}%` +
    (step ? ` ${step.name} ${step.progressPercent.toFixed(0)}%${step.message ? ` (${step.message})` : ""}` : "") +
    (job.bytesSent ? ` ${formatBytes(job.bytesSent)} sent` : "")
  );
}

function stepStateCell(state: string, colours: Palette): string {
  if (state === "succeeded") return colours.green(state);
  if (state === "failed" || state === "cancelled") return colours.red(state);
  if (state === "in-progress") return colours.yellow(state);
  return colours.dim(state);
}

/** A job and its steps as lines: one header line, then a step table with progress and messages. */
export function jobLines(job: Job, colours: Palette): string[] {
  const doc = jobDocument(job);
  const head =
    `${doc.type} ${doc.jobId}  ${stepStateCell(doc.state, colours)}  ${doc.progressPercent.toFixed(0)}%  ${doc.durationSeconds.toFixed(1)} s` +
    (doc.bytesSent ? `  ${formatBytes(doc.bytesSent)} sent` : "") +
    (doc.error ? `  ${colours.red(doc.error)}` : "");
  const started = new Map(job.steps.map((s) => [s.name, s]));
  return [
    head,
    ...formatTable(
      ["STEP", "STATE", "PROGRESS", "MESSAGE"],
      doc.steps.map((s) => [s.name, stepStateCell(s.state, colours), started.get(s.name) ? `${s.progressPercent.toFixed(0)}%` : "", s.message ?? ""]),
    ),
  ];
}

/**
 * `srlab jobs --follow JOB`: the job's steps redrawn as they change until it ends; the promise
 * rejects when the job did not succeed, so the exit status tells scripts the outcome.
 */
export async function followJob(client: AdminClient, jobId: string, intervalMs = 500, view = new LiveView()): Promise<Job> {
  const interrupt = interruptSignal();
  const colours = palette(wantsColour(process.stdout));
  let last: Job | undefined;
  try {
    await watch(
      view,
      async () => {
        if (last && DONE.has(last.state)) return undefined;
        const { job } = await client.call(client.client.getJob, { jobId });
        if (!job) throw new Error(`job ${jobId} disappeared`);
        last = job;
        return jobLines(job, colours);
      },
      { intervalMs, signal: interrupt.signal },
    );
  } finally {
    interrupt.dispose();
  }
  if (!last) throw new Error(`job ${jobId}: interrupted before it was read`);
  if (!DONE.has(last.state)) throw new Error(`stopped following job ${jobId}; it is still ${jobDocument(last).state}`);
  if (last.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${jobDocument(last).type} job ${jobId} ${jobDocument(last).state}: ${last.error}`);
  return last;
}
