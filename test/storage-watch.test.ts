import { describe, expect, test, vi } from "vitest";
import { silentLogger } from "../common/logger.js";
import { type BlobStore, StorageUnavailableError } from "../common/storage/index.js";
import type { Machine } from "../process-server/machine.js";
import { StorageWatch } from "../process-server/pipeline/index.js";
import { withStorageRetry } from "../process-server/pipeline/storage-retry.js";
import { Health, HealthIssueCode } from "../proto/index.js";

/** A store whose every call fails while `down` is set, counting uploads and probes. */
function flakyStore() {
  const s = {
    down: true,
    puts: 0,
    probes: 0,
    async putObject(): Promise<void> {
      s.puts++;
      if (s.down) throw new StorageUnavailableError("connect ECONNREFUSED 127.0.0.1:10000", { code: "ECONNREFUSED" });
    },
    async objectExists(): Promise<boolean> {
      s.probes++;
      if (s.down) throw new StorageUnavailableError("connect ECONNREFUSED 127.0.0.1:10000", { code: "ECONNREFUSED" });
      return false;
    },
  };
  return s;
}

const machineIssues: Array<{ stage: string; code?: number }> = [];
const machine = { id: "m1", setIssue: (stage: string, issue?: { code: number }) => machineIssues.push({ stage, code: issue?.code }) } as unknown as Machine;

describe("storage outage", () => {
  test("a cheap probe notices storage return and the upload resumes without waiting out its backoff", async () => {
    const fake = flakyStore();
    const store = fake as unknown as BlobStore;
    const watch = StorageWatch.of(store, { probeIntervalMs: 20, criticalAfterMs: 60_000, logger: silentLogger() });
    const abort = new AbortController();
    // One time unit is an hour: without the probe the first retry would come an hour later.
    const upload = withStorageRetry(() => store.putObject("seg", Buffer.alloc(1)), {
      machine,
      stage: "upload",
      operation: "upload of a segment",
      timeUnitMs: 3_600_000,
      signal: abort.signal,
      logger: silentLogger(),
      store,
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(fake.puts).toBe(1);
    expect(watch.reachable).toBe(false);
    const [issue] = watch.issues();
    expect(issue?.health).toBe(Health.HEALTH_WARNING);
    expect(issue?.code).toBe(HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNREACHABLE);
    expect(issue?.message).toMatch(/ECONNREFUSED/);
    const probesWhileDown = fake.probes;
    expect(probesWhileDown).toBeGreaterThan(1);
    expect(fake.puts, "expensive retries keep to the backoff schedule").toBe(1);

    fake.down = false;
    await upload;
    expect(fake.puts).toBe(2);
    expect(watch.reachable).toBe(true);
    expect(watch.issues()).toEqual([]);
    abort.abort();
  });

  test("an outage longer than the critical limit makes the component Critical", async () => {
    const fake = flakyStore();
    const store = fake as unknown as BlobStore;
    const watch = StorageWatch.of(store, { probeIntervalMs: 20, criticalAfterMs: 1_000 });
    watch.reportFailure(new StorageUnavailableError("timeout"));
    expect(watch.issues()[0]?.health).toBe(Health.HEALTH_WARNING);
    expect(watch.issues(Date.now() + 1_500)[0]?.health).toBe(Health.HEALTH_CRITICAL);
    fake.down = false;
    await watch.whenBack();
    expect(watch.issues()).toEqual([]);
    watch.stop();
  });

  test("storage that refused connections (it restarted) is reported on its return; one that only hung is not", async () => {
    const outage = (message: string) => {
      const fake = { down: true, async objectExists(): Promise<boolean> {
        if (fake.down) throw new StorageUnavailableError(message);
        return false;
      } };
      return fake;
    };
    for (const [message, restarted] of [["connect ECONNREFUSED 127.0.0.1:10000", true], ["request timed out after 30000 ms", false]] as const) {
      const fake = outage(message);
      const watch = StorageWatch.of(fake as unknown as BlobStore, { probeIntervalMs: 20, criticalAfterMs: 60_000 });
      const reasons: string[] = [];
      watch.onRestarted((reason) => reasons.push(reason));
      watch.reportFailure(new StorageUnavailableError(message));
      await new Promise((r) => setTimeout(r, 60));
      fake.down = false;
      await watch.whenBack();
      expect(reasons.length, message).toBe(restarted ? 1 : 0);
      if (restarted) expect(reasons[0]).toMatch(/storage restarted .*writes it acknowledged just before may be lost/);
      watch.stop();
    }
  });

  test("a restart of storage while nothing is uploaded is noticed by the probe of reachable storage; a hang is not a restart", async () => {
    for (const [message, restarted] of [["connect ECONNREFUSED 127.0.0.1:10000", true], ["request timed out after 30000 ms", false]] as const) {
      const fake = {
        down: false,
        probes: 0,
        async objectExists(): Promise<boolean> {
          fake.probes++;
          if (fake.down) throw new StorageUnavailableError(message);
          return false;
        },
      };
      const watch = StorageWatch.of(fake as unknown as BlobStore, { probeIntervalMs: 20, idleProbeMs: 30, criticalAfterMs: 60_000, logger: silentLogger() });
      const reasons: string[] = [];
      watch.onRestarted((reason) => reasons.push(reason));
      watch.start();
      try {
        // Idle and reachable: the probe keeps asking, at its low rate.
        await vi.waitFor(() => expect(fake.probes).toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 10 });
        expect(watch.reachable).toBe(true);
        // Storage goes away and comes back; no upload or apply runs meanwhile.
        fake.down = true;
        await vi.waitFor(() => expect(watch.reachable, message).toBe(false), { timeout: 5_000, interval: 5 });
        expect(watch.issues()[0]?.code).toBe(HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNREACHABLE);
        fake.down = false;
        await vi.waitFor(() => expect(watch.reachable, message).toBe(true), { timeout: 5_000, interval: 5 });
        expect(reasons.length, message).toBe(restarted ? 1 : 0);
        if (restarted) expect(reasons[0]).toMatch(/storage restarted .*writes it acknowledged just before may be lost/);
      } finally {
        watch.stop();
      }
      // Stopped: the probe asks nothing more.
      const after = fake.probes;
      await new Promise((r) => setTimeout(r, 120));
      expect(fake.probes).toBe(after);
    }
  });
});
