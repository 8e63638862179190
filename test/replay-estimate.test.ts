import { describe, expect, test } from "vitest";
import { applyRate, describeReplay, replayEstimate } from "../cli/commands/replay-estimate.js";
import type { MachineSample, TelemetrySample } from "../proto/index.js";

const NOW = Date.parse("2026-11-28T12:00:00Z");

function sample(secondsAgo: number, processedBytes: number, machineId = "m1"): TelemetrySample {
  const machine = { machineId, processedBytes } as MachineSample;
  return { time: new Date(NOW - secondsAgo * 1000), machines: [machine], components: [], alerts: [] };
}

describe("failover replay estimate", () => {
  test("the apply rate is bytes applied over the last minute of samples", () => {
    const samples = [sample(90, 0), sample(50, 10_000_000), sample(30, 20_000_000), sample(10, 30_000_000)];
    // The 90 s old sample is outside the window: 20 MB over the 40 s from 50 s to 10 s ago.
    expect(applyRate(samples, "m1", NOW)).toBeCloseTo(500_000);
  });

  test("a restarted process server's counter is measured from its restart on", () => {
    const samples = [sample(40, 50_000_000), sample(30, 60_000_000), sample(20, 1_000_000), sample(10, 3_000_000)];
    expect(applyRate(samples, "m1", NOW)).toBeCloseTo(200_000);
  });

  test("no rate without at least two samples of the machine or without progress", () => {
    expect(applyRate([sample(10, 5)], "m1", NOW)).toBeNull();
    expect(applyRate([sample(20, 5), sample(10, 5)], "m1", NOW)).toBeNull();
    expect(applyRate([sample(20, 5, "other"), sample(10, 50, "other")], "m1", NOW)).toBeNull();
  });

  test("the estimate divides the backlog by the rate and says so", () => {
    const e = replayEstimate(8 * 1024 * 1024, 4.2, 2 * 1024 * 1024);
    expect(e.seconds).toBeCloseTo(4);
    expect(describeReplay(e)).toBe("replay: 8.0 MiB uploaded but not yet applied (oldest 4.2 s old); about 4 s at the last minute's apply rate of 2.0 MiB/s");
  });

  test("no backlog needs no replay; a backlog without a rate gets no made-up time", () => {
    expect(describeReplay(replayEstimate(0, 0, null))).toBe("replay: none — the replica has applied everything uploaded");
    const stalled = replayEstimate(1024, 30, null);
    expect(stalled.seconds).toBeNull();
    expect(describeReplay(stalled)).toMatch(/no apply measured in the last minute/);
  });
});
