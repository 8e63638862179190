import { describe, expect, test } from "vitest";
import { jobProgressText } from "../cli/commands/jobs.js";
import { type Job, type JobStep, JobState, JobType } from "../proto/index.js";

function step(name: string, state: JobState, progressPercent: number, message = ""): JobStep {
  return { name, state, progressPercent, message } as JobStep;
}

describe("a running job's progress line", () => {
  test("names the step at work with its message, so a failover's replay estimate shows before the replay", () => {
    const job = {
      type: JobType.JOB_TYPE_FAILOVER,
      progressPercent: 40,
      bytesSent: 0,
      steps: [
        step("prerequisites", JobState.JOB_STATE_SUCCEEDED, 100, "checked"),
        step("disks", JobState.JOB_STATE_IN_PROGRESS, 0, "replay of 120 writes in 2 log segments (3.0 MiB) after point p-1"),
        step("start", JobState.JOB_STATE_NOT_STARTED, 0),
      ],
    } as unknown as Job;
    expect(jobProgressText(job)).toBe("Failover: 40% disks 0% (replay of 120 writes in 2 log segments (3.0 MiB) after point p-1)");
  });

  test("a step without a message, and bytes sent, read plainly", () => {
    const job = { type: JobType.JOB_TYPE_FAILOVER, progressPercent: 10, bytesSent: 2 * 1024 * 1024, steps: [step("disks", JobState.JOB_STATE_IN_PROGRESS, 5)] } as unknown as Job;
    expect(jobProgressText(job)).toBe("Failover: 10% disks 5% 2.0 MiB sent");
  });
});
