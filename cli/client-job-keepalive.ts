import type { AdminClient } from "./admin-client.js";

/**
 * Renews the lease of a job the CLI runs (CreateClientJobResponse.lease_seconds) while the CLI
 * works on it, so a step that reports nothing for minutes does not look like a dead CLI. Returns
 * the function that stops it; the timer never keeps the process alive.
 */
export function keepClientJobAlive(admin: Pick<AdminClient, "call" | "client">, jobId: string, leaseSeconds: number): () => void {
  if (!(leaseSeconds > 0)) return () => undefined;
  // Four renewals per lease: one lost or slow call does not end the job.
  const everyMs = Math.max(250, (leaseSeconds * 1000) / 4);
  const timer = setInterval(() => {
    admin
      .call(admin.client.updateClientJob, { jobId, stepName: "", stepState: 0, progressPercent: 0, message: "", finish: 0, error: "", result: undefined }, everyMs)
      .catch(() => undefined);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
