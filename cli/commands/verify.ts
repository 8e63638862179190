import { formatByteRange } from "../../common/blockhash/index.js";
import { type Job, JobState, VerifyTarget } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { printJson, ProgressLine } from "../output.js";
import { resultDocument } from "./job-result.js";
import { jobProgressText } from "./jobs.js";

const ENDED = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

/** Follows a job to its end and returns it, failed or not (the caller reads its findings). */
export async function followJob(c: AdminClient, jobId: string, showProgress: boolean): Promise<Job> {
  const line = new ProgressLine(showProgress);
  for (;;) {
    const { job } = await c.call(c.client.getJob, { jobId });
    if (!job) throw new Error(`job ${jobId} disappeared`);
    line.update(jobProgressText(job));
    if (ENDED.has(job.state)) {
      line.done();
      return job;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function verify(dir: string, machine: string, o: { point?: string; failedOver?: boolean; test?: boolean; replica?: boolean; failedBack?: boolean; json?: boolean }) {
  const chosen = [o.point !== undefined, o.failedOver, o.test, o.replica, o.failedBack].filter(Boolean).length;
  if (chosen !== 1) throw new Error("say what to verify: exactly one of --point ID, --failed-over, --test, --replica, --failed-back");
  const target = o.point !== undefined
    ? VerifyTarget.VERIFY_TARGET_POINT
    : o.failedOver
      ? VerifyTarget.VERIFY_TARGET_FAILED_OVER
      : o.test
        ? VerifyTarget.VERIFY_TARGET_TEST_FAILOVER
        : o.failedBack
          ? VerifyTarget.VERIFY_TARGET_FAILED_BACK
          : VerifyTarget.VERIFY_TARGET_REPLICA;
  return AdminClient.using(dir, async (c) => {
    const { job: started } = await c.callOn(c.proofs, c.proofs.verify, { machine, target, recoveryPointId: o.point ?? "" });
    const job = await followJob(c, started!.jobId, !o.json);
    const doc = job.result?.kind?.$case === "verify" ? job.result.kind.value : undefined;
    if (o.json && doc) printJson(resultDocument(job.result));
    else if (doc) {
      for (const d of doc.disks) {
        console.log(
          d.ok
            ? `${doc.machine} disk ${d.index}: ok, fingerprint ${d.expected} at sequence ${doc.sequence}`
            : `${doc.machine} disk ${d.index}: MISMATCH at sequence ${doc.sequence}: ${d.ranges.map(formatByteRange).join(", ") || "whole disk"} (expected ${d.expected || "none"}, got ${d.actual || "none"})`,
        );
      }
    }
    if (job.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(job.error || `verify job ${job.jobId} did not succeed`);
  });
}
