import { type JobResult, JobType, type LoadTestSummary } from "../../proto/index.js";
import { JobState } from "../../proto/index.js";
import type { AdminClient } from "../admin-client.js";
import { keepClientJobAlive } from "../client-job-keepalive.js";
import type { LoadReport } from "./report.js";
import type { RunSummary } from "./summary.js";

/** The steps of a load test's job, in order (what `srlab jobs` and the dashboard show). */
export const PHASES = ["machines", "protection", "load", "drain", "verify", "report"] as const;

export type PhaseName = (typeof PHASES)[number];

/**
 * The run as a job on the configuration server, so `srlab jobs` and the dashboard show it with
 * its steps and, once written, its report. Reporting is best effort: a run never fails because
 * its job could not be updated.
 */
export class LoadJob {
  private constructor(
    private readonly client: AdminClient,
    readonly jobId: string,
    private readonly stopRenewing: () => void,
  ) {}

  /** Starts the job with the phases already done (the lab had to be up to record it). */
  static async start(client: AdminClient, id: string, done: LoadReport["phases"]): Promise<LoadJob | undefined> {
    try {
      const { job, leaseSeconds } = await client.call(client.client.createClientJob, { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: [...PHASES] });
      const j = new LoadJob(client, job!.jobId, keepClientJobAlive(client, job!.jobId, leaseSeconds));
      for (const p of done) await j.step(p.name as PhaseName, p.state === "succeeded" ? JobState.JOB_STATE_SUCCEEDED : JobState.JOB_STATE_FAILED, p.name === "machines" ? `load test ${id}` : "");
      return j;
    } catch {
      return undefined;
    }
  }

  async step(name: PhaseName, state: JobState, message = "", progressPercent = 0): Promise<void> {
    await this.update({ stepName: name, stepState: state, message, progressPercent });
  }

  async attach(files: Record<string, string>): Promise<void> {
    for (const [name, text] of Object.entries(files)) {
      await this.client.call(this.client.client.attachJobReport, { jobId: this.jobId, name, content: Buffer.from(text) }).catch(() => undefined);
    }
  }

  /** Ends the job with the verdict and, when the run got that far, its report directory and summary. */
  async finish(verdict: LoadReport["verdict"], interrupted: boolean, measured?: { reportDir: string; summary: RunSummary }): Promise<void> {
    this.stopRenewing();
    const finish = verdict.passed ? JobState.JOB_STATE_SUCCEEDED : interrupted ? JobState.JOB_STATE_CANCELLED : JobState.JOB_STATE_FAILED;
    const result: JobResult = {
      kind: {
        $case: "loadTest",
        value: { verdict, reportDir: measured?.reportDir ?? "", summary: measured ? loadTestSummary(measured.summary) : undefined },
      },
    };
    await this.update({ finish, error: verdict.passed ? "" : verdict.reason, result });
  }

  private async update(u: Partial<{ stepName: string; stepState: JobState; message: string; progressPercent: number; finish: JobState; error: string; result: JobResult }>): Promise<void> {
    await this.client
      .call(this.client.client.updateClientJob, {
        jobId: this.jobId,
        stepName: u.stepName ?? "",
        stepState: u.stepState ?? JobState.JOB_STATE_UNSPECIFIED,
        progressPercent: u.progressPercent ?? 0,
        message: u.message ?? "",
        finish: u.finish ?? JobState.JOB_STATE_UNSPECIFIED,
        error: u.error ?? "",
        result: u.result,
      })
      .catch(() => undefined);
  }
}

/** The headline figures of a run for its job (report.json keeps every figure). */
export function loadTestSummary(s: RunSummary): LoadTestSummary {
  return {
    loadSeconds: s.loadSeconds,
    drainSeconds: s.drainSeconds,
    capturedBytes: s.bytes.captured,
    uploadedBytes: s.bytes.uploaded,
    processedBytes: s.bytes.processed,
    rpoP50Seconds: s.rpoSeconds.p50,
    rpoP95Seconds: s.rpoSeconds.p95,
    rpoMaxSeconds: s.rpoSeconds.max,
    warningAlerts: s.alerts.warning,
    criticalAlerts: s.alerts.critical,
    verified: s.verified,
  };
}
