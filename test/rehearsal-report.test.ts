import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { failuresOf, type RehearsalReport, renderJunit, targetMet } from "../config-server/plans/rehearsal-report.js";
import { renderRehearsalHtml } from "../config-server/plans/rehearsal-html.js";
import { scheduleProblem } from "../config-server/plans/rehearsal-scheduler.js";
import { rehearsalWorkload } from "../cli/commands/rehearse.js";
import { browserMissing, chartStates, withPage } from "./support/browser.js";
import { WorkloadProfile } from "../proto/index.js";

const t0 = Date.parse("2026-11-28T10:00:00Z");
const at = (s: number) => new Date(t0 + s * 1000).toISOString();

/** A two-machine test cycle; `bad` makes machine-2's disk differ at one page. */
function sampleReport(bad = false): RehearsalReport {
  const step = (name: string, group: string, machine: string | null, from: number, to: number, state = "succeeded", output: string | null = null) => ({
    name,
    group,
    machine,
    state,
    startedAt: at(from),
    endedAt: at(to),
    message: state === "succeeded" ? null : "it went wrong <badly> & \"loudly\"",
    output,
  });
  const proof = (m: string, ok: boolean) => ({
    step: `verify: test failover of ${m}`,
    disk: 0,
    expected: "a".repeat(64),
    actual: ok ? "a".repeat(64) : "b".repeat(64),
    ok,
    sequence: 42,
    ranges: ok ? [] : ["bytes 12288-16383 (4096 bytes)"],
  });
  const report: RehearsalReport = {
    runId: "run-1",
    plan: "web",
    cycle: "test",
    result: "passed",
    failures: [],
    scheduled: false,
    network: "isolated",
    workload: { name: "oltp", profile: "random", blockSize: 8192, rateBytesPerSecond: 2e6 },
    startedAt: at(0),
    endedAt: at(60),
    targets: { rpoSeconds: 120, rtoSeconds: 300, rpoMet: true, rtoMet: true },
    steps: [
      step("workload: generated writes on every machine", "rehearsal", null, 0, 55),
      step("tag: group-consistent app point", "rehearsal", null, 1, 3),
      step("test failover: db: test-failover machine-1", "db", "machine-1", 3, 10),
      step("test failover: db: post 1 (script)", "db", null, 10, 11, "succeeded", "db ok\n\u0007bell"),
      step("test failover: web: test-failover machine-2", "web", "machine-2", 11, 20),
      step("verify: test failover of machine-1", "db", "machine-1", 20, 25),
      step("verify: test failover of machine-2", "web", "machine-2", 25, 30, bad ? "failed" : "succeeded"),
      step("cleanup: db: cleanup machine-1", "db", "machine-1", 30, 35),
      step("cleanup: web: cleanup machine-2", "web", "machine-2", 35, 40),
      step("replication healthy: machine-1", "db", "machine-1", 55, 56),
      step("replication healthy: machine-2", "web", "machine-2", 56, 57),
    ],
    machines: [
      { name: "machine-1", group: "db", recoveryPointId: "rp-1", sequence: 42, rpoSeconds: 3.2, rtoSeconds: 7, rpoMet: true, rtoMet: true, proofs: [proof("machine-1", true)] },
      { name: "machine-2", group: "web", recoveryPointId: "rp-2", sequence: 42, rpoSeconds: 4.1, rtoSeconds: 9, rpoMet: true, rtoMet: true, proofs: [proof("machine-2", !bad)] },
    ],
    rpoSamples: { t: Array.from({ length: 30 }, (_, i) => t0 / 1000 + 2 * i), machines: { "machine-1": Array.from({ length: 30 }, (_, i) => i % 4), "machine-2": Array.from({ length: 30 }, (_, i) => (i === 3 ? null : i % 5)) } },
  };
  report.failures = failuresOf(report);
  report.result = report.failures.length ? "failed" : "passed";
  return report;
}

describe("rehearsal report: verdict", () => {
  test("targets: none is met, a figure within is met, a missing figure or one above is not", () => {
    expect(targetMet(null, null)).toBe(true);
    expect(targetMet(120, 119.9)).toBe(true);
    expect(targetMet(120, 120)).toBe(true);
    expect(targetMet(120, 120.1)).toBe(false);
    expect(targetMet(120, null)).toBe(false);
  });

  test("a passed run has no failures; a bad disk, a failed step and a missed target are each named", () => {
    expect(sampleReport().failures).toEqual([]);
    const bad = sampleReport(true);
    expect(bad.result).toBe("failed");
    expect(bad.failures).toContain('step "verify: test failover of machine-2" failed: it went wrong <badly> & "loudly"');
    expect(bad.failures).toContain('machine-2 disk 0 at "verify: test failover of machine-2" differs from the source at sequence 42: bytes 12288-16383 (4096 bytes)');
    const slow = sampleReport();
    slow.machines[0]!.rtoMet = false;
    expect(failuresOf(slow)).toEqual(["machine-1: RTO 7.0 s misses the target of 300 s"]);
  });
});

describe("rehearsal report: the full cycle", () => {
  /** machine-1 after a full cycle: figures per failover and failback, a failback proof against the Azure disk. */
  function fullReport(failbackRto: number, failbackOk = true): RehearsalReport {
    const r = sampleReport();
    r.cycle = "full";
    const m = r.machines[0]!;
    m.figures = [
      { operation: "test-failover", rpoSeconds: 3.2, rtoSeconds: 7, rpoMet: true, rtoMet: true },
      { operation: "failover", rpoSeconds: 1.5, rtoSeconds: 12, rpoMet: true, rtoMet: true },
      { operation: "failback", rpoSeconds: 0, rtoSeconds: failbackRto, rpoMet: true, rtoMet: failbackRto <= 300 },
    ];
    m.rtoSeconds = Math.max(7, 12, failbackRto);
    m.rtoMet = failbackRto <= 300;
    m.proofs.push({
      step: "verify: failback of machine-1",
      disk: 0,
      expected: "c".repeat(64),
      actual: failbackOk ? "c".repeat(64) : "d".repeat(64),
      ok: failbackOk,
      sequence: 90,
      ranges: failbackOk ? [] : ["bytes 0-4095 (4096 bytes)"],
      against: "the Azure disk",
    });
    r.failures = failuresOf(r);
    r.result = r.failures.length ? "failed" : "passed";
    return r;
  }

  test("a missed target names the operation that missed it; a failback proof names the Azure disk", () => {
    expect(fullReport(20).failures).toEqual([]);
    expect(fullReport(400).failures).toEqual(["machine-1: RTO of the failback 400.0 s misses the target of 300 s"]);
    expect(fullReport(20, false).failures).toEqual(['machine-1 disk 0 at "verify: failback of machine-1" differs from the Azure disk: bytes 0-4095 (4096 bytes)']);
  });

  test("junit.xml has a target case per machine, operation and figure; report.html a row per operation", () => {
    const r = fullReport(400, false);
    const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === "testsuite" || name === "testcase" }).parse(renderJunit(r));
    const [, proofs, targets] = doc.testsuites.testsuite as Array<{ "@_failures": string; testcase: Array<Record<string, unknown>> }>;
    expect(proofs!["@_failures"]).toBe("1");
    expect(String((proofs!.testcase.find((c) => c["@_name"] === "machine-1 disk 0 at verify: failback of machine-1")!.failure as Record<string, string>)["@_message"])).toBe("disk 0 differs from the Azure disk: bytes 0-4095 (4096 bytes)");
    // machine-1: 3 operations × RPO and RTO; machine-2 (no figures): its one pair.
    expect(targets!.testcase.map((c) => c["@_name"])).toEqual([
      "machine-1 RPO of the test-failover 3.2 s within 120 s",
      "machine-1 RTO of the test-failover 7.0 s within 300 s",
      "machine-1 RPO of the failover 1.5 s within 120 s",
      "machine-1 RTO of the failover 12.0 s within 300 s",
      "machine-1 RPO of the failback 0.0 s within 120 s",
      "machine-1 RTO of the failback 400.0 s within 300 s",
      "machine-2 RPO 4.1 s within 120 s",
      "machine-2 RTO 9.0 s within 300 s",
    ]);
    expect(targets!["@_failures"]).toBe("1");
    const page = renderRehearsalHtml(r);
    expect(page).toContain("the Azure disk");
    expect(page.match(/<td>machine-1<\/td><td>db<\/td><td>(test-failover|failover|failback)<\/td>/g)).toHaveLength(3);
  });
});

describe("rehearsal report: junit.xml", () => {
  test("parses, with one test case per step, per proof and per target, and failures where they failed", () => {
    const r = sampleReport(true);
    const xml = renderJunit(r);
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === "testsuite" || name === "testcase" }).parse(xml);
    const suites = doc.testsuites.testsuite as Array<{ "@_name": string; "@_tests": string; "@_failures": string; testcase: Array<Record<string, unknown>> }>;
    expect(suites.map((s) => s["@_name"])).toEqual(["web steps", "web proofs", "web targets"]);
    const [steps, proofs, targets] = suites;
    expect(steps!.testcase.map((c) => c["@_name"])).toEqual(r.steps.map((s) => s.name));
    expect(steps!["@_failures"]).toBe("1");
    const failed = steps!.testcase.find((c) => c["@_name"] === "verify: test failover of machine-2")!;
    expect((failed.failure as Record<string, string>)["@_message"]).toBe('failed: it went wrong <badly> & "loudly"');
    expect(steps!.testcase.find((c) => c["@_name"] === "tag: group-consistent app point")!["@_time"]).toBe("2.000");
    expect(proofs!.testcase.map((c) => c["@_name"])).toEqual(["machine-1 disk 0 at verify: test failover of machine-1", "machine-2 disk 0 at verify: test failover of machine-2"]);
    expect(proofs!["@_failures"]).toBe("1");
    expect(String((proofs!.testcase[1]!.failure as Record<string, string>)["@_message"])).toContain("bytes 12288-16383");
    expect(targets!.testcase).toHaveLength(4);
    expect(targets!["@_failures"]).toBe("0");
    expect(doc.testsuites["@_tests"]).toBe(String(r.steps.length + 2 + 4));
  });

  test("control characters in an action's output do not break the XML", () => {
    expect(XMLValidator.validate(renderJunit(sampleReport()))).toBe(true);
    expect(renderJunit(sampleReport())).toContain("db ok\nbell");
  });
});

describe("rehearsal report: report.html", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "srlab-rehearsal-html-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("is one self-contained page: every step, the proofs, targets and output, escaped", () => {
    const page = renderRehearsalHtml(sampleReport(true));
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).not.toMatch(/<(script|link|img)[^>]+(src|href)="(?!data:)/i);
    for (const s of sampleReport().steps) expect(page).toContain(s.name);
    expect(page).toContain("it went wrong &lt;badly&gt; &amp; &quot;loudly&quot;");
    expect(page).toContain("bytes 12288-16383 (4096 bytes)");
    expect(page).toContain('id="chart-rpo"');
    expect(page).toContain("FAILED");
  });

  test("opens offline in a browser with no console errors, draws the RPO chart and shows every step", async (ctx) => {
    const missing = browserMissing();
    if (missing) return ctx.skip(missing);
    const r = sampleReport(true);
    const file = join(dir, "report.html");
    await writeFile(file, renderRehearsalHtml(r));
    await withPage(file, async (opened) => {
      await opened.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
      const charts = await chartStates(opened.page);
      expect(charts).toEqual([{ id: "rpo", drawn: "true", points: expect.any(Number) }]);
      expect(charts[0]!.points).toBeGreaterThan(0);
      const text = await opened.page.locator("#steps").textContent();
      for (const s of r.steps) expect(text).toContain(s.name);
      expect(await opened.page.locator("#timeline .row").count()).toBe(r.steps.length);
      expect(await opened.page.locator("#proofs").textContent()).toContain("bytes 12288-16383");
      opened.assertNoErrors({ offline: true });
    });
  });
});

describe("rehearsal schedules and options", () => {
  test("a cron schedule of the test cycle is accepted; other cycles and bad expressions get one clear reason", () => {
    expect(scheduleProblem("0 3 * * 6", "test")).toBeUndefined();
    expect(scheduleProblem("*/30 * * * * *", "test")).toBeUndefined();
    expect(scheduleProblem("0 3 * * 6", "full")).toBe("--cycle full cannot be scheduled: only test runs on a schedule");
    expect(scheduleProblem("0 3 * * 6", "")).toMatch(/--cycle \(none\) cannot be scheduled/);
    expect(scheduleProblem("0 3 * *", "test")).toMatch(/needs 5 fields/);
    expect(scheduleProblem("0 3 * * * * *", "test")).toMatch(/needs 5 fields/);
    expect(scheduleProblem("61 3 * * 6", "test")).toBe('--cron "61 3 * * 6" is not a valid cron expression');
    expect(scheduleProblem("every day", "test")).toMatch(/needs 5 fields/);
  });

  test("--workload maps a load profile to the agent generator's settings; --rate alone or a bad profile is refused", () => {
    expect(rehearsalWorkload(undefined, undefined)).toBeUndefined();
    expect(rehearsalWorkload("oltp", "4MB/s")).toEqual({ name: "oltp", profile: WorkloadProfile.WORKLOAD_PROFILE_RANDOM, blockSize: 8192, rateBytesPerSecond: 4e6 });
    expect(rehearsalWorkload("log", undefined)).toEqual({ name: "log", profile: WorkloadProfile.WORKLOAD_PROFILE_APPEND_LOG, blockSize: 16384, rateBytesPerSecond: 2e6 });
    expect(() => rehearsalWorkload(undefined, "4MB/s")).toThrow("--rate needs --workload PROFILE");
    expect(() => rehearsalWorkload("nope", undefined)).toThrow(/unknown profile "nope" \(oltp, zipf/);
    expect(() => rehearsalWorkload("oltp", "fast")).toThrow(/--rate: invalid rate "fast"/);
    expect(() => rehearsalWorkload("oltp", "0MB/s")).toThrow("--rate must be above zero");
  });
});
