import { jobTypes } from "../common/enum-names/index.js";
import { type Job, type JobResult, JobState } from "../proto/index.js";
import { PollTimeoutError, pollUntil } from "../common/async/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import type { ConfigStore } from "./store/index.js";

/** Runs a job's body in the background and records each step's state, progress and message. */
export class JobRunner {
  /** Jobs asked to stop, with the reason: however their body ends, they end Cancelled. */
  private readonly cancelled = new Map<string, string>();

  constructor(
    private readonly store: ConfigStore,
    private readonly logger: Logger,
  ) {}

  async step<T>(job: Job, name: string, fn: () => Promise<T>): Promise<T> {
    this.store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 0, message: "" });
    try {
      const result = await fn();
      this.store.updateJobStep(job.jobId, name, {
        state: JobState.JOB_STATE_SUCCEEDED,
        progressPercent: 100,
        message: typeof result === "string" ? result : "",
      });
      return result;
    } catch (err) {
      this.store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_FAILED, progressPercent: 0, message: (err as Error).message });
      throw err;
    }
  }

  progress(job: Job, name: string, percent: number, message = ""): void {
    this.store.updateJobStep(job.jobId, name, { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: percent, message });
  }

  /** Marks a running job as cancelled; its body is stopped by whoever runs it. */
  markCancelled(jobId: string, reason: string): void {
    this.cancelled.set(jobId, reason);
  }

  /** Runs `body` in the background; what it returns is the job's typed result (none: undefined). */
  run(job: Job, body: () => Promise<JobResult | undefined>, onFailure?: (message: string) => void): void {
    const endCancelled = (): boolean => {
      const reason = this.cancelled.get(job.jobId);
      if (reason === undefined) return false;
      this.cancelled.delete(job.jobId);
      this.store.finishJob(job.jobId, { state: JobState.JOB_STATE_CANCELLED, error: `cancelled: ${reason}` });
      this.logger.info("job cancelled", { jobId: job.jobId, type: jobTypes.name(job.type), reason });
      return true;
    };
    body().then(
      (result) => {
        if (endCancelled()) return;
        this.store.finishJob(job.jobId, { state: JobState.JOB_STATE_SUCCEEDED, result });
        this.logger.info("job succeeded", { jobId: job.jobId, type: jobTypes.name(job.type) });
      },
      (err: unknown) => {
        if (endCancelled()) return;
        const message = (err as Error).message ?? String(err);
        // A failure that still produced findings (a verification mismatch) keeps them as the result.
        const findings = (err as { result?: JobResult }).result;
        this.store.finishJob(job.jobId, { state: JobState.JOB_STATE_FAILED, error: message, result: findings });
        this.logger.warn("job failed", { jobId: job.jobId, type: jobTypes.name(job.type), error: message });
        try {
          onFailure?.(message);
        } catch (e) {
          this.logger.error("job failure handling failed", { jobId: job.jobId, error: (e as Error).message });
        }
      },
    );
  }

  async waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    try {
      return await pollUntil(what, probe, { timeoutMs, intervalMs: 200 });
    } catch (err) {
      if (err instanceof PollTimeoutError) throw new SrlabError(ErrorCode.UNAVAILABLE, `timed out waiting for ${what}`);
      throw err;
    }
  }
}
