import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { capacityPlan } from "../cli/loadtest/capacity-plan.js";
import { profileJobFile } from "../cli/loadtest/fio-runner.js";
import { Histogram } from "../cli/loadtest/histogram.js";
import { liveFigures, plainLine } from "../cli/loadtest/live-view.js";
import type { LoadReport } from "../cli/loadtest/report.js";
import { renderReportHtml } from "../cli/loadtest/report-html.js";
import type { RunSample } from "../cli/loadtest/samples.js";
import { buildSpec } from "../cli/loadtest/spec.js";
import { figureOf, summarize } from "../cli/loadtest/summary.js";
import { judge, parseThreshold } from "../cli/loadtest/thresholds.js";
import { browserMissing, chartStates, withPage } from "./support/browser.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-loadtest-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("load-test spec", () => {
  test("flags build a one-group spec in base units", () => {
    const s = buildSpec({ machines: "4", profile: "oltp", rate: "5MB/s", duration: "60s", threshold: ["rpo.p99<1s"] });
    expect(s).toMatchObject({ machines: 4, via: "generator", groups: [{ count: 4, profile: "oltp", stages: [{ durationSeconds: 60, rateBytesPerSecond: 5e6 }] }] });
    expect(s.thresholds[0]).toMatchObject({ metric: "rpo", aggregate: "p99", op: "<", value: 1 });
    expect(s.plan).toEqual({ machines: 100, rpoSeconds: 900, growthPercent: 30 });
  });

  test("a YAML spec gives stages and machine groups", () => {
    const file = join(dir, "spec.yaml");
    writeFileSync(file, "machines: 3\nstages:\n  - { duration: 10s, rate: 1MB/s }\n  - { duration: 5s, rate: 4MB/s }\ngroups:\n  - { machines: 2, profile: log }\n  - { machines: [machine-3], profile: backup, rate: 2MB/s }\nthresholds: ['cache.free.min>30%']\n");
    const s = buildSpec({ spec: file });
    expect(s.groups[0]).toMatchObject({ count: 2, profile: "log", stages: [{ durationSeconds: 10, rateBytesPerSecond: 1e6 }, { durationSeconds: 5, rateBytesPerSecond: 4e6 }] });
    expect(s.groups[1]).toMatchObject({ names: ["machine-3"], profile: "backup", stages: [{ rateBytesPerSecond: 2e6 }] });
  });

  test.each([
    [{ profile: "nope" }, /unknown profile "nope"/],
    [{ rate: "-5MB/s" }, /--rate: must not be negative/],
    [{ duration: "0s" }, /--duration: must be positive/],
    [{ threshold: ["rpo.p99 1s"] }, /malformed threshold/],
    [{ threshold: ["bogus.p99<1s"] }, /unknown metric "bogus"/],
    [{ threshold: ["rpo.p42x<1s"] }, /malformed threshold|needs one of/],
    [{ threshold: ["cache.free.min>130%"] }, /not a percentage/],
    [{ via: "carrier-pigeon" }, /--via: must be generator or nbd/],
    [{ machines: "0" }, /--machines: must be an integer ≥ 1/],
  ])("bad input %o gets one clear line", (flags, message) => {
    let err: Error | undefined;
    try {
      buildSpec(flags);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(message);
    expect(err?.message).not.toContain("\n");
  });

  test("an unknown setting in a spec file is named", () => {
    const file = join(dir, "typo.yaml");
    writeFileSync(file, "machines: 2\nprofiel: oltp\n");
    expect(() => buildSpec({ spec: file })).toThrow(/unknown setting "profiel"/);
  });
});

describe("thresholds", () => {
  test("units parse to base units and verdicts follow the operator", () => {
    expect(parseThreshold("throughput.mean>20MB/s").value).toBe(20e6);
    expect(parseThreshold("latency.p99.9<=2ms")).toMatchObject({ aggregate: "p99.9", op: "<=", value: 2 });
    expect(parseThreshold("alerts.critical==0")).toMatchObject({ aggregate: "value", value: 0 });
    const verdicts = judge([parseThreshold("rpo.p99<1s"), parseThreshold("latency.p99<5ms")], (m) => (m === "rpo" ? 0.4 : undefined));
    expect(verdicts).toEqual([
      { expression: "rpo.p99<1s", actual: 0.4, passed: true },
      { expression: "latency.p99<5ms", actual: null, passed: false, note: "no latency figures in this run" },
    ]);
  });
});

describe("histogram", () => {
  test("percentiles are within 1/64 of the exact ones", () => {
    const values = Array.from({ length: 10_000 }, (_, i) => ((i * 7919) % 10_000) / 10 + 0.01);
    const h = new Histogram();
    for (const v of values) h.record(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(1 / 64 + 1e-9);
    }
    expect(h.max).toBe(Math.max(...values));
  });
});

/** A synthetic run: two machines writing 1 MB/s each for 10 s, one process server. */
function syntheticSamples(rpo: (t: number) => number): RunSample[] {
  return Array.from({ length: 16 }, (_, i) => {
    const t = i - 2;
    const bytes = Math.max(0, Math.min(t, 10)) * 1e6;
    const m = (lag: number) => ({ rpoSeconds: rpo(t), pendingBytes: 0, capturedBytes: bytes, receivedBytes: bytes, uploadedBytes: Math.max(0, bytes - lag), processedBytes: Math.max(0, bytes - 2 * lag), captureMode: 1 });
    return {
      t,
      time: new Date(1_800_000_000_000 + t * 1000).toISOString(),
      machines: { "machine-1": m(1e6), "machine-2": m(1e6) },
      processServers: { "process-server-1": { cacheUsedBytes: 2e6, cacheFreePercent: 90 - t, backlogSeconds: t > 8 ? 40 : 1, backlogBytes: 1e6, cpuPercent: 20, memoryBytes: 1e8, memoryPercent: 1, health: 1 } },
      daemons: { "process-server-1": { role: "process-server", cpuPercent: 20, memoryBytes: 1e8 }, "machine-1": { role: "agent", cpuPercent: 5, memoryBytes: 5e7 } },
      alerts: t > 8 ? [{ component: "process-server-1", code: "UPLOAD_BACKLOG", level: "warning", value: 40, threshold: 30, message: "upload backlog 40.0 s is above 30 s", raisedAt: new Date(1_800_000_009_000).toISOString() }] : [],
    };
  });
}

describe("summary and capacity plan", () => {
  const samples = syntheticSamples((t) => (t < 0 ? 0 : t / 10));
  const summary = summarize(samples, 10, undefined, true);

  test("figures come from every sample: rates, RPO percentiles, cache, alerts", () => {
    expect(summary.bytes.captured).toBe(20e6);
    expect(summary.throughput.captured.mean).toBeCloseTo(2e6, 0);
    expect(summary.rpoSeconds.max).toBeCloseTo(1.3, 5);
    expect(summary.cache.freeMinPercent).toBe(80);
    expect(summary.alerts).toMatchObject({ warning: 1, critical: 0 });
    expect(figureOf(summary, "cache.free", "min")).toBe(80);
    expect(figureOf(summary, "alerts.warning", "value")).toBe(1);
    expect(figureOf(summary, "latency", "p99")).toBeUndefined();
  });

  test("the plan sizes on the 95th percentile of churn plus growth", () => {
    const plan = capacityPlan(samples, 10, new Map([["machine-1", "process-server-1"], ["machine-2", "process-server-1"]]), { machines: 100, rpoSeconds: 900, growthPercent: 30 });
    expect(plan.measured.churnP95BytesPerSecond).toBeCloseTo(1e6, -4);
    expect(plan.plannedChurnPerMachineBytesPerSecond).toBeCloseTo(1.3e6, -4);
    expect(plan.measured.processServerUploadBytesPerSecond).toBeCloseTo(2e6, -4);
    expect(plan.processServers).toBe(Math.ceil((100 * plan.plannedChurnPerMachineBytesPerSecond) / plan.measured.processServerUploadBytesPerSecond));
    expect(plan.uploadBandwidthBitsPerSecond).toBeCloseTo(100 * plan.plannedChurnPerMachineBytesPerSecond * 8, -3);
    expect(plan.notes[0]).toMatch(/Deployment Planner/);
  });

  test("the plain live line carries every live figure", () => {
    const f = liveFigures(samples[5], samples[6]!, "load", 4, 10);
    expect(plainLine(f)).toBe("loadtest phase=load t=4s/10s captured=2.00MB/s uploaded=2.00MB/s processed=2.00MB/s rpo.p50=0.40s rpo.max=0.40s cache.used=2000000B cache.free=86.0% backlog=1.0s alerts=0");
  });

  test("a fio job runs the stages one after the other at each stage's write rate", () => {
    const text = profileJobFile("oltp", [{ durationSeconds: 5, rateBytesPerSecond: 3e6 }, { durationSeconds: 2, rateBytesPerSecond: 1e6 }], { machine: "m", nbdUri: "nbd://127.0.0.1:1/disk-0", diskSizeBytes: 1 << 24 }, 7);
    expect(text).toContain("ioengine=nbd\nuri=nbd://127.0.0.1:1/disk-0\nsize=16777216");
    expect(text).toMatch(/\[stage-1\][\s\S]*rwmixread=70[\s\S]*runtime=5s\nrate=7000000,3000000\nstonewall/);
    expect(text).toMatch(/\[stage-2\][\s\S]*runtime=2s\nrate=2333333,1000000\nstonewall/);
  });

  test("the report page draws every chart of a run and of the run it is compared with", async (ctx) => {
    const report = fakeReport("lt-new", summary, samples);
    const old = fakeReport("lt-old", summarize(syntheticSamples(() => 0.2), 10, undefined, true), syntheticSamples(() => 0.2));
    const page = renderReportHtml(report, old);
    expect(page).toContain("compared with lt-old");
    expect(page).toContain("captured (lt-old)");
    const missing = browserMissing();
    if (missing) return ctx.skip(missing);
    const file = join(dir, "report.html");
    writeFileSync(file, page);
    await withPage(file, async (o) => {
      await o.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
      const charts = await chartStates(o.page);
      expect(charts.map((c) => c.id)).toEqual(["throughput", "rpo", "cache-free", "cache-used", "backlog", "cpu", "memory", "rpo-distribution"]);
      for (const c of charts) expect([c.id, c.drawn, c.points > 0]).toEqual([c.id, "true", true]);
      o.assertNoErrors({ offline: true });
    });
  });
});

function fakeReport(id: string, summary: ReturnType<typeof summarize>, samples: RunSample[]): LoadReport {
  return {
    kind: "srlab-loadtest",
    formatVersion: 1,
    id,
    startedAt: samples[0]!.time,
    loadEndedAt: samples[12]!.time,
    endedAt: samples[15]!.time,
    spec: { machines: 2, via: "generator", fioJobFile: null, groups: [{ machines: ["machine-1", "machine-2"], profile: "oltp", stages: [{ durationSeconds: 10, rateBytesPerSecond: 1e6 }] }], thresholds: [], seed: 1, plan: { machines: 100, rpoSeconds: 900, growthPercent: 30 } },
    environment: { cpus: 2, cpuModel: "test", memoryBytes: 1e9, node: "v20", platform: "linux x64", srlabVersion: "0.1.0", storage: "azurite", timeUnitSeconds: 1, processServers: ["process-server-1"], alertThresholds: { cacheFreeWarningPercent: 30, cacheFreeCriticalPercent: 25, backlogWarningSeconds: 30, backlogCriticalSeconds: 45, cpuWarningPercent: 80, cpuCriticalPercent: 95, memoryWarningPercent: 80, memoryCriticalPercent: 95 } },
    phases: [{ name: "load", startMs: 0, endMs: 10_000, state: "succeeded" }],
    machines: [],
    samples,
    latency: null,
    summary,
    thresholds: [],
    capacityPlan: capacityPlan(samples, 10, new Map(), { machines: 100, rpoSeconds: 900, growthPercent: 30 }),
    verdict: { passed: true, exitCode: 0, reason: "passed" },
  };
}
