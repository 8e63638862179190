import { type Job, JobState } from "../../proto/index.js";
import { pollUntil } from "../../common/async/index.js";
import type { AdminClient } from "../admin-client.js";
import { enumLabel, formatBytes, ProgressLine } from "../output.js";

export function jobDocument(job: Job) {
  return {
    jobId: job.jobId,
    type: job.type,
    machineId: job.machineId,
    state: enumLabel(JobState, job.state, "JOB_STATE_"),
    progressPercent: job.progressPercent,
    startTime: job.startTime?.toISOString() ?? null,
    endTime: job.endTime?.toISOString() ?? null,
    durationSeconds: job.startTime ? ((job.endTime ?? new Date()).getTime() - job.startTime.getTime()) / 1000 : 0,
    bytesSent: job.bytesSent,
    error: job.error || null,
    result: job.resultJson ? (JSON.parse(job.resultJson) as unknown) : null,
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
    const step = job.steps.find((s) => s.state === JobState.JOB_STATE_IN_PROGRESS);
    line.update(
      `${job.type}: ${job.progressPercent.toFixed(0)}%${step ? ` ${step.name} ${step.progressPercent.toFixed(0)}%` : ""}${job.bytesSent ? ` ${formatBytes(job.bytesSent)} sent` : ""}`,
    );
    return DONE.has(job.state) ? job : undefined;
  };
  const job = await pollUntil(`job ${jobId}`, ended, { intervalMs: 250 });
  line.done();
  if (job.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${job.type} job ${job.jobId} failed: ${job.error}`);
  return job;
}
