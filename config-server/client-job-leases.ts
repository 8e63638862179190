import type { Logger } from "../common/logger.js";
import { type Job, JobState } from "../proto/index.js";
import { type ConfigStore, isTerminalJobState } from "./store/index.js";

export interface ClientJobLeasesOptions {
  store: ConfigStore;
  /** How long a client job lives after its CLI's last update (clientJobLeaseSeconds). */
  leaseMs: number;
  logger?: Logger;
  /** How often lapsed leases are looked for; a quarter of the lease by default. */
  checkIntervalMs?: number;
}

/**
 * Jobs the CLI runs (load tests, push installs) are only alive while their CLI reports. Each
 * update renews the job's lease; a job whose CLI stopped reporting (killed, host gone) ends
 * Failed instead of staying InProgress until the server restarts. Leases are kept in memory:
 * a restart fails every unfinished job anyway.
 */
export class ClientJobLeases {
  private readonly lastReport = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: ClientJobLeasesOptions) {}

  get leaseSeconds(): number {
    return this.o.leaseMs / 1000;
  }

  /** The CLI reported on the job at `at`. */
  renew(jobId: string, at: number = Date.now()): void {
    this.lastReport.set(jobId, at);
  }

  /** The job ended by its CLI's own word. */
  release(jobId: string): void {
    this.lastReport.delete(jobId);
  }

  /** Ends every client job whose lease lapsed by `now` as Failed, its running steps too; returns them. */
  expire(now: number = Date.now()): Job[] {
    const ended: Job[] = [];
    for (const [jobId, last] of this.lastReport) {
      if (now - last <= this.o.leaseMs) continue;
      this.lastReport.delete(jobId);
      const job = this.o.store.getJob(jobId);
      if (!job || isTerminalJobState(job.state)) continue;
      const reason = `the CLI running it stopped reporting at ${new Date(last).toISOString()} (no update for ${this.leaseSeconds} s, clientJobLeaseSeconds)`;
      const at = new Date(now);
      for (const s of job.steps) {
        if (s.state === JobState.JOB_STATE_IN_PROGRESS) this.o.store.updateJobStep(jobId, s.name, { state: JobState.JOB_STATE_FAILED, message: reason }, at);
      }
      ended.push(this.o.store.finishJob(jobId, { state: JobState.JOB_STATE_FAILED, error: reason }, at));
      this.o.logger?.warn("client job abandoned by its CLI", { job: jobId, lastReport: new Date(last).toISOString() });
    }
    return ended;
  }

  start(): void {
    const every = this.o.checkIntervalMs ?? Math.max(250, this.o.leaseMs / 4);
    this.timer = setInterval(() => {
      try {
        this.expire();
      } catch (err) {
        this.o.logger?.error("client job leases not checked", { error: (err as Error).message });
      }
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
