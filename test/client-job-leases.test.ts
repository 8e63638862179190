import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test, vi } from "vitest";
import { channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import type { AdminClient } from "../cli/admin-client.js";
import { keepClientJobAlive } from "../cli/client-job-keepalive.js";
import { ClientJobLeases } from "../config-server/client-job-leases.js";
import type { Caller } from "../config-server/handlers/caller.js";
import type { ConfigHost } from "../config-server/handlers/host.js";
import { jobHandlers } from "../config-server/handlers/jobs.js";
import { ConfigServer } from "../config-server/index.js";
import { ConfigStore } from "../config-server/store/index.js";
import { AdminServiceClient, JobState, JobType } from "../proto/index.js";
import { testConfigServerOptions } from "./support/config-server-options.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-client-leases-"));
const stores: ConfigStore[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.parse("2026-03-01T10:00:00.000Z");
const caller = {} as Caller;
const touch = { stepName: "", stepState: 0, progressPercent: 0, message: "", finish: 0, error: "", result: undefined };

/** The admin service's job handlers over a real store, with a 60 s lease and the clock at T0. */
function lab() {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
  const store = ConfigStore.open(join(dir, `${Math.random().toString(36).slice(2)}.db`), { timeUnitSeconds: 1 });
  stores.push(store);
  const leases = new ClientJobLeases({ store, leaseMs: 60_000, logger: silentLogger() });
  const handlers = jobHandlers({ store, clientJobs: leases } as unknown as ConfigHost);
  return { store, leases, handlers };
}

describe("client job leases", () => {
  test("a client job whose CLI stops reporting ends Failed with when it last reported, its running step too", async () => {
    const { store, leases, handlers } = lab();
    const created = await handlers.createClientJob({ type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: ["machines", "load", "verify"] }, caller);
    expect(created.leaseSeconds).toBe(60);
    const jobId = created.job!.jobId;
    await handlers.updateClientJob({ ...touch, jobId, stepName: "machines", stepState: JobState.JOB_STATE_SUCCEEDED, progressPercent: 100 }, caller);
    vi.setSystemTime(T0 + 5_000);
    await handlers.updateClientJob({ ...touch, jobId, stepName: "load", stepState: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 40 }, caller);
    // The CLI is killed here: nothing more arrives.
    expect(leases.expire(T0 + 5_000 + 60_000)).toEqual([]);
    expect(JobState[store.getJob(jobId)!.state]).toBe("JOB_STATE_IN_PROGRESS");
    const ended = leases.expire(T0 + 5_000 + 60_001);
    expect(ended.map((j) => j.jobId)).toEqual([jobId]);
    const job = store.getJob(jobId)!;
    expect(JobState[job.state]).toBe("JOB_STATE_FAILED");
    expect(job.error).toContain("the CLI running it stopped reporting at 2026-03-01T10:00:05.000Z");
    expect(job.endTime).toEqual(new Date(T0 + 65_001));
    const steps = Object.fromEntries(job.steps.map((s) => [s.name, s]));
    expect(JobState[steps.machines!.state]).toBe("JOB_STATE_SUCCEEDED");
    expect(JobState[steps.load!.state]).toBe("JOB_STATE_FAILED");
    expect(steps.load!.message).toContain("stopped reporting at 2026-03-01T10:00:05.000Z");
    expect(steps.load!.progressPercent).toBe(40);
    expect(JobState[steps.verify!.state]).toBe("JOB_STATE_NOT_STARTED");
    // A late update from the CLI learns the job ended rather than reviving it.
    await expect(async () => handlers.updateClientJob({ ...touch, jobId, stepName: "load", stepState: JobState.JOB_STATE_SUCCEEDED }, caller)).rejects.toThrow(/already finished as JOB_STATE_FAILED/);
    expect(leases.expire(T0 + 10 * 60_000)).toEqual([]);
  });

  test("an update with only the job id renews the lease: a long quiet step is not a dead CLI", async () => {
    const { store, leases, handlers } = lab();
    const { job } = await handlers.createClientJob({ type: JobType.JOB_TYPE_PUSH_INSTALL, machine: "", steps: ["copy"] }, caller);
    for (let t = 20_000; t <= 300_000; t += 20_000) {
      vi.setSystemTime(T0 + t);
      await handlers.updateClientJob({ ...touch, jobId: job!.jobId }, caller);
      expect(leases.expire(T0 + t + 59_000)).toEqual([]);
    }
    expect(JobState[store.getJob(job!.jobId)!.state]).toBe("JOB_STATE_IN_PROGRESS");
    const done = await handlers.updateClientJob({ ...touch, jobId: job!.jobId, finish: JobState.JOB_STATE_SUCCEEDED }, caller);
    expect(JobState[done.job!.state]).toBe("JOB_STATE_SUCCEEDED");
    // Finished by its CLI: the lease is gone and the job keeps its own end.
    expect(leases.expire(T0 + 3_600_000)).toEqual([]);
    expect(JobState[store.getJob(job!.jobId)!.state]).toBe("JOB_STATE_SUCCEEDED");
  });

  test("the server's timer ends a lapsed job without any call", async () => {
    vi.useRealTimers();
    const store = ConfigStore.open(join(dir, `${Math.random().toString(36).slice(2)}.db`), { timeUnitSeconds: 1 });
    stores.push(store);
    const leases = new ClientJobLeases({ store, leaseMs: 200, checkIntervalMs: 50, logger: silentLogger() });
    const handlers = jobHandlers({ store, clientJobs: leases } as unknown as ConfigHost);
    const { job } = await handlers.createClientJob({ type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: ["load"] }, caller);
    leases.start();
    try {
      await vi.waitFor(() => expect(JobState[store.getJob(job!.jobId)!.state]).toBe("JOB_STATE_FAILED"), { timeout: 5_000, interval: 50 });
    } finally {
      leases.stop();
    }
    expect(store.getJob(job!.jobId)!.error).toMatch(/stopped reporting at \d{4}-\d\d-\d\dT/);
  });
});

describe("client job leases on a running configuration server", () => {
  test("a CLI's renewals keep its job running past the lease; once they stop (the CLI was killed) the job ends Failed", { timeout: 60_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), "srlab-client-lease-cs-"));
    const cs = new ConfigServer(testConfigServerOptions(root, { clientJobLeaseSeconds: 2, dashboard: { enabled: false } }), silentLogger());
    await cs.start();
    const client = new AdminServiceClient(cs.grpcAddress, channelCredentials(undefined));
    try {
      const admin = {
        client,
        call: <Req, Res>(method: Parameters<typeof unaryCall<Req, Res>>[1], request: Req, timeoutMs = 30_000) => unaryCall(client, method, request, cs.adminCredential, timeoutMs),
      } as unknown as Pick<AdminClient, "call" | "client">;
      const { job, leaseSeconds } = await admin.call(client.createClientJob, { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: ["load", "report"] });
      expect(leaseSeconds).toBe(2);
      const stopRenewing = keepClientJobAlive(admin, job!.jobId, leaseSeconds);
      // Two and a half leases long with no progress report: the renewals alone keep it alive.
      await new Promise((r) => setTimeout(r, 5_000));
      const running = (await admin.call(client.getJob, { jobId: job!.jobId })).job!;
      expect(JobState[running.state]).toBe("JOB_STATE_IN_PROGRESS");
      const lastRenewal = Date.now();
      stopRenewing();
      const ended = await vi.waitFor(
        async () => {
          const j = (await admin.call(client.getJob, { jobId: job!.jobId })).job!;
          expect(JobState[j.state]).toBe("JOB_STATE_FAILED");
          return j;
        },
        { timeout: 15_000, interval: 100 },
      );
      expect(ended.error).toMatch(/^the CLI running it stopped reporting at \d{4}-\d\d-\d\dT[\d:.]+Z/);
      const reportedAt = Date.parse(/at (\S+)/.exec(ended.error)![1]!);
      // The time named is the last renewal's (one may still have been on its way at the stop).
      expect(Math.abs(lastRenewal - reportedAt)).toBeLessThan(2_000);
      expect(ended.steps.map((s) => JobState[s.state])).toEqual(["JOB_STATE_FAILED", "JOB_STATE_NOT_STARTED"]);
    } finally {
      client.close();
      await cs.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
