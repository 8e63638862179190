import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { RestartBackoff } from "../cli/lab/restart-backoff.js";
import { ErrorCode, retryWithBackoff, SrlabError } from "../common/errors/index.js";
import { silentLogger } from "../common/logger.js";
import { runWorkload, type WorkloadTarget } from "../mobility-agent/workload/index.js";
import type { Machine } from "../process-server/machine.js";
import { withStorageRetry } from "../process-server/pipeline/storage-retry.js";
import { Health, HealthIssueCode } from "../proto/index.js";

// Backoffs measured in ASR minutes and rate limits over seconds, checked on a fake clock: the
// production schedule (a minute per unit) runs in an instant and every wait is exact.

const MINUTE = 60_000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Minutes since the test's clock started, at each call. */
function clockMinutes(): () => number {
  const t0 = Date.now();
  return () => (Date.now() - t0) / MINUTE;
}

describe("ASR's retry backoff (1, 2, 4, 8, 10, then every 30 units)", () => {
  test("retryWithBackoff tries again after exactly 1, 2, 4, 8, 10, 30, 30 minutes", async () => {
    const now = clockMinutes();
    const tries: number[] = [];
    const done = retryWithBackoff(async () => {
      tries.push(now());
      if (tries.length < 8) throw new SrlabError(ErrorCode.NETWORK, "link down");
      return "up";
    });
    await vi.advanceTimersByTimeAsync(MINUTE - 1);
    expect(tries, "no retry before the first minute is over").toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(tries).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(90 * MINUTE);
    await expect(done).resolves.toBe("up");
    expect(tries).toEqual([0, 1, 3, 7, 15, 25, 55, 85]);
  });

  describe("a storage operation in the process server", () => {
    const issues: Array<{ stage: string; health?: Health; code?: HealthIssueCode; message?: string }> = [];
    const machine = {
      id: "m1",
      setIssue: (stage: string, issue?: { health: Health; code: HealthIssueCode; message: string }) => issues.push({ stage, ...issue }),
    } as unknown as Machine;
    const options = (signal: AbortSignal) => ({ machine, stage: "upload" as const, operation: "upload of a segment", timeUnitMs: MINUTE, signal, logger: silentLogger() });

    beforeEach(() => {
      issues.length = 0;
    });

    /** An upload that fails `failures` times with `error`, then succeeds; `tries` are the minutes it was tried at. */
    function flakyUpload(failures: number, error: SrlabError) {
      const now = clockMinutes();
      const tries: number[] = [];
      const upload = withStorageRetry(async () => {
        tries.push(now());
        if (tries.length <= failures) throw error;
        return "uploaded";
      }, options(new AbortController().signal));
      return { upload, tries };
    }

    test("an outage is retried on the schedule with a Warning that says when, cleared on success", async () => {
      const { upload, tries } = flakyUpload(4, new SrlabError(ErrorCode.STORAGE_UNAVAILABLE, "connect ECONNREFUSED"));
      await vi.advanceTimersByTimeAsync(14 * MINUTE);
      expect(tries).toEqual([0, 1, 3, 7]);
      await vi.advanceTimersByTimeAsync(MINUTE);
      await expect(upload).resolves.toBe("uploaded");
      expect(tries).toEqual([0, 1, 3, 7, 15]);
      expect(issues.slice(0, -1).map((i) => [i.health, i.message?.match(/attempt \d+, retrying in \d+ s/)?.[0]])).toEqual([
        [Health.HEALTH_WARNING, "attempt 1, retrying in 60 s"],
        [Health.HEALTH_WARNING, "attempt 2, retrying in 120 s"],
        [Health.HEALTH_WARNING, "attempt 3, retrying in 240 s"],
        [Health.HEALTH_WARNING, "attempt 4, retrying in 480 s"],
      ]);
      expect(issues.at(-1), "success clears the issue").toEqual({ stage: "upload" });
    });

    test("a failure that is not an outage is Critical and still retried, at the slow 30-unit rate", async () => {
      const { upload, tries } = flakyUpload(2, new SrlabError(ErrorCode.BROKEN_CHAIN, "sequence gap"));
      await vi.advanceTimersByTimeAsync(30 * MINUTE - 1);
      expect(tries).toEqual([0]);
      expect(issues).toEqual([{ stage: "upload", health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_UPLOAD_FAILED, message: "upload of a segment failed and needs attention: sequence gap" }]);
      await vi.advanceTimersByTimeAsync(30 * MINUTE + 1);
      await expect(upload).resolves.toBe("uploaded");
      expect(tries).toEqual([0, 30, 60]);
    });

    test("stopping the process server ends a 30-minute wait at once", async () => {
      const ac = new AbortController();
      const upload = withStorageRetry(async () => {
        throw new SrlabError(ErrorCode.STORAGE_UNAVAILABLE, "connect ECONNREFUSED");
      }, options(ac.signal));
      const settled = expect(upload).rejects.toThrow("stopping");
      await vi.advanceTimersByTimeAsync(25 * MINUTE);
      ac.abort(new Error("stopping"));
      await settled;
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});

describe("the lab keeper's restart backoff (1, 2, 4, 8, 16, then every 30 s)", () => {
  test("a daemon that keeps crashing is restarted ever later; one that ran a minute is restarted after 1 s again", async () => {
    const backoff = new RestartBackoff();
    const t0 = Date.now();
    const starts: number[] = [];
    let runsForMs = 0;
    // The keeper's loop: start, the daemon exits after runsForMs, restart after the backoff.
    const start = () => {
      const startedAt = Date.now();
      starts.push((startedAt - t0) / 1000);
      const exited = () => setTimeout(start, backoff.next(startedAt));
      if (runsForMs > 0) setTimeout(exited, runsForMs);
      else exited();
    };
    start();
    await vi.advanceTimersByTimeAsync(91_000);
    expect(starts).toEqual([0, 1, 3, 7, 15, 31, 61, 91]);
    runsForMs = 60_000; // the start at 121 s lives a healthy minute and exits at 181 s
    await vi.advanceTimersByTimeAsync(30_000);
    expect(starts.at(-1)).toBe(121);
    runsForMs = 0;
    await vi.advanceTimersByTimeAsync(63_000);
    expect(starts.slice(-3)).toEqual([121, 182, 184]);
  });
});

describe("the workload's token bucket", () => {
  /** Counts what the workload writes; writes complete at once, so only the bucket paces them. */
  function countingTarget(): WorkloadTarget & { writes: number; bytes: number } {
    const t = {
      size: 64 * 1024 * 1024,
      writes: 0,
      bytes: 0,
      write: (_offset: number, data: Buffer) => {
        t.writes++;
        t.bytes += data.length;
      },
      flush: () => undefined,
    };
    return t;
  }

  test("an IOPS limit lets the burst through at once, then one write per 1/rate second", async () => {
    const target = countingTarget();
    // 100 IOPS: a burst of 10 (0.1 s of rate), then a write every 10 ms.
    const run = runWorkload(target, { profile: "random", iops: 100, durationMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(target.writes).toBe(10);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(target.writes).toBeGreaterThanOrEqual(10 + 500 - 1);
    expect(target.writes).toBeLessThanOrEqual(10 + 500 + 1);
    await vi.advanceTimersByTimeAsync(5_000);
    const result = await run;
    expect(result.aborted).toBe(false);
    expect(result.writes).toBeGreaterThanOrEqual(10 + 1_000 - 2);
    expect(result.writes).toBeLessThanOrEqual(10 + 1_000);
  });

  test("a byte-rate limit holds over any window: at most burst + rate × t bytes", async () => {
    const target = countingTarget();
    const rate = 1024 * 1024;
    const block = 64 * 1024;
    const run = runWorkload(target, { profile: "sequential", blockSize: block, rateBytesPerSec: rate, durationMs: 8_000 });
    for (let second = 1; second <= 8; second++) {
      await vi.advanceTimersByTimeAsync(1_000);
      // The last write taken may overdraw the bucket by less than one block.
      expect(target.bytes, `after ${second} s`).toBeLessThanOrEqual(0.1 * rate + rate * second + block);
      expect(target.bytes, `after ${second} s`).toBeGreaterThanOrEqual(rate * second - block);
    }
    const result = await run;
    expect(result.seconds).toBe(8);
  });
});
