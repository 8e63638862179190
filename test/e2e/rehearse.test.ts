import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { describe, expect } from "vitest";
import { LabLayout } from "../../cli/lab/index.js";
import { browserMissing, withPage } from "../support/browser.js";
import { srlab, srlabAsync, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { test } from "../support/lab.js";
import { flipByteInBlob } from "../support/lab-storage.js";
import { applyHeldPlan, applyTwoGroupPlan, type RehearsalReport, releaseHeldPlan } from "../support/plans.js";

interface MachineStatus {
  name: string;
  testFailover: { disks: Array<{ index: number; blob: string }> } | null;
}

const MiB = 1024 * 1024;
const PAGE = 4096;
let dir: string;
let work: string;
const machines = ["machine-1", "machine-2"];

async function status(name: string): Promise<MachineStatus> {
  const s = await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === name)!;
}

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "rehearse", up: ["--machines", "2", "--disk-size", "4MiB", "--time-unit", "1s"] }));
  await srlabOk(["network", "create", "isolated", "--address-space", "192.168.0.0/16", "--dir", dir]);
  await Promise.all(machines.map((m) => srlabOk(["protect", m, "--wait", "--dir", dir], 300_000)));
  const script = { name: "check.sh", body: `#!/bin/sh\necho "checked $SRLAB_GROUP in $SRLAB_OPERATION"\n` };
  await applyTwoGroupPlan({ dir, work }, { name: "drill", web: ["machine-2"], on: ["test-failover"], script });
}, 600_000);

describe("srlab rehearse --cycle test", () => {
  let report: RehearsalReport;

  test("under a workload: tag, test failover, a proof per disk, cleanup, healthy replication; exit 0 and the three report files", async () => {
    const out = join(work, "report");
    const r = await srlab(["rehearse", "drill", "--cycle", "test", "--workload", "oltp", "--rate", "256KiB/s", "--auto-approve", "--report", out, "--dir", dir, "--json"], 600_000);
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout) as RehearsalReport;
    expect(report.result).toBe("passed");
    expect(report.failures).toEqual([]);
    // Live progress: each step announced as it changed state.
    expect(r.stderr).toMatch(/in-progress\s+tag: group-consistent app point/);
    expect(r.stderr).toMatch(/succeeded\s+verify: test failover of machine-2/);

    const names = report.steps.map((s) => s.name);
    expect(names).toEqual([
      "workload: generated writes on every machine",
      "tag: group-consistent app point",
      "test failover: db: test-failover machine-1",
      "test failover: db: post 1 (script)",
      "test failover: web: pre 1 (manual)",
      "test failover: web: test-failover machine-2",
      "verify: test failover of machine-1",
      "verify: test failover of machine-2",
      "cleanup: db: cleanup machine-1",
      "cleanup: web: cleanup machine-2",
      "replication healthy: machine-1",
      "replication healthy: machine-2",
    ]);
    for (const s of report.steps) {
      expect(s.state, s.name).toBe("succeeded");
      expect(Date.parse(s.endedAt!) >= Date.parse(s.startedAt!), s.name).toBe(true);
    }
    expect(report.steps.find((s) => s.name.endsWith("post 1 (script)"))!.output).toContain("checked db in test-failover");
    expect(report.steps.find((s) => s.name === "verify: test failover of machine-1")).toMatchObject({ group: "db", machine: "machine-1" });
    // The test failover happened after the tag, and the cleanup after every verify.
    const end = (n: string) => Date.parse(report.steps.find((s) => s.name === n)!.endedAt!);
    const start = (n: string) => Date.parse(report.steps.find((s) => s.name === n)!.startedAt!);
    expect(end("tag: group-consistent app point") <= start("test failover: db: test-failover machine-1")).toBe(true);
    expect(end("verify: test failover of machine-2") <= start("cleanup: db: cleanup machine-1")).toBe(true);

    for (const m of report.machines) {
      expect(m.proofs, m.name).toHaveLength(1);
      const p = m.proofs[0]!;
      expect(p).toMatchObject({ step: `verify: test failover of ${m.name}`, disk: 0, ok: true });
      expect(p.actual).toMatch(/^[0-9a-f]{64}$/);
      expect(p.actual).toBe(p.expected);
      expect(m.rpoSeconds).not.toBeNull();
      expect(m.rtoSeconds).toBeGreaterThan(0);
    }
    expect(report.targets).toMatchObject({ rpoSeconds: 600, rtoSeconds: 600, rpoMet: true, rtoMet: true });

    // The same report in the chosen directory; the test failovers are gone.
    expect(JSON.parse(readFileSync(join(out, "report.json"), "utf8"))).toMatchObject({ runId: report.runId, result: "passed" });
    for (const m of machines) expect((await status(m)).testFailover).toBeNull();

    // The rehearsal is a job with its steps, and a plan run.
    const job = await srlabJson<{ type: string; state: string; steps: Array<{ name: string; state: string }> }>(["jobs", "--job", report.runId, "--dir", dir]);
    expect(job.type).toBe("Rehearsal");
    expect(job.steps.map((s) => s.name)).toEqual(names);
    const runs = await srlabJson<Array<{ runId: string; operation: string; state: string }>>(["plan", "runs", "drill", "--dir", dir]);
    expect(runs.find((x) => x.runId === report.runId)).toMatchObject({ operation: "rehearsal-test", state: "succeeded" });
  }, 900_000);

  test("junit.xml parses with one test case per step and per proof", () => {
    const xml = readFileSync(join(work, "report", "junit.xml"), "utf8");
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, isArray: (n) => n === "testsuite" || n === "testcase" }).parse(xml);
    const [steps, proofs] = doc.testsuites.testsuite as Array<{ testcase: Array<{ "@_name": string; failure?: unknown }> }>;
    expect(steps!.testcase.map((c) => c["@_name"])).toEqual(report.steps.map((s) => s.name));
    expect(proofs!.testcase.map((c) => c["@_name"])).toEqual(["machine-1 disk 0 at verify: test failover of machine-1", "machine-2 disk 0 at verify: test failover of machine-2"]);
    expect(xml).not.toContain("<failure");
  });

  test("report.html opens offline with no console errors and shows every step", async ({ skip }) => {
    const missing = browserMissing();
    if (missing) return skip(missing);
    await withPage(join(work, "report", "report.html"), async (opened) => {
      await opened.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
      expect(await opened.page.locator("#steps table").isVisible()).toBe(true);
      const steps = await opened.page.locator("#steps").textContent();
      for (const s of report.steps) expect(steps).toContain(s.name);
      expect(await opened.page.locator("#timeline .row").count()).toBe(report.steps.length);
      expect(await opened.page.locator("#proofs").textContent()).toMatch(/machine-2[\s\S]*holds/);
      if (report.rpoSamples.t.length >= 2) expect(await opened.page.locator("#chart-rpo canvas").count()).toBe(1);
      opened.assertNoErrors({ offline: true });
    });
  });

  test("a schedule runs test rehearsals from the configuration server; srlab plan runs shows them", async () => {
    const bad = await srlab(["plan", "schedule", "drill", "--cron", "0 3 * * 6", "--cycle", "full", "--dir", dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe("srlab: --cycle full cannot be scheduled: only test runs on a schedule");
    const s = await srlabJson<{ cron: string; nextRun: string }>(["plan", "schedule", "drill", "--cron", "*/15 * * * * *", "--cycle", "test", "--network", "isolated", "--auto-approve", "--dir", dir]);
    expect(Date.parse(s.nextRun)).toBeGreaterThan(Date.now() - 1000);
    const scheduled = await waitUntil(
      "a scheduled rehearsal",
      async () => (await srlabJson<Array<{ runId: string; operation: string }>>(["plan", "runs", "drill", "--dir", dir])).find((x) => x.operation === "rehearsal-test" && x.runId !== report.runId),
      60_000,
    );
    await srlabOk(["plan", "schedule", "drill", "--off", "--dir", dir]);
    expect(await srlabJson<unknown[]>(["plan", "schedules", "--dir", dir])).toEqual([]);
    const ended = await waitUntil(
      "the scheduled rehearsal to end",
      async () => {
        const runs = await srlabJson<Array<{ runId: string; state: string; result: { result: string; scheduled: boolean } | null }>>(["plan", "runs", "drill", "--dir", dir]);
        const run = runs.find((x) => x.runId === scheduled.runId)!;
        return run.state === "in-progress" ? undefined : run;
      },
      600_000,
      1000,
    );
    expect(ended.state).toBe("succeeded");
    expect(ended.result).toMatchObject({ result: "passed", scheduled: true });
    // The configuration server keeps the report files of runs nobody watched.
    const serverDir = join(new LabLayout(dir).dataDir("config-server"), "rehearsals", scheduled.runId);
    for (const f of ["report.json", "junit.xml", "report.html"]) expect(existsSync(join(serverDir, f)), f).toBe(true);
  }, 900_000);
});

describe("a rehearsal that finds a difference", () => {
  test("a corrupted failed-over disk fails the rehearsal naming the disk and range; the test failover is still cleaned up", async () => {
    // Lets the test touch the test-failover disk between the failover and the verify step.
    await applyHeldPlan({ dir, work }, "corrupt", "machine-2", "test-failover");
    const running = srlabAsync(["rehearse", "corrupt", "--cycle", "test", "--network", "isolated", "--report", join(work, "bad"), "--dir", dir]);

    await waitUntil("the test failover to be held", async () => existsSync(join(work, "held")), 300_000, 500);
    const blob = (await status("machine-2")).testFailover!.disks[0]!.blob;
    const at = 2 * MiB + 7 * PAGE + 10;
    await flipByteInBlob(dir, blob, at);
    releaseHeldPlan(work);

    const r = await running;
    expect(r.code, r.stdout).toBe(1);
    const pageStart = at - (at % PAGE);
    const range = `bytes ${pageStart}-${pageStart + PAGE - 1}`;
    expect(r.stderr).toMatch(new RegExp(`machine-2 disk 0 .*differs from the source at sequence \\d+: ${range}`));
    expect(r.stdout).toContain("rehearsal failed");
    const report = JSON.parse(readFileSync(join(work, "bad", "report.json"), "utf8")) as RehearsalReport;
    expect(report.result).toBe("failed");
    const proof = report.machines[0]!.proofs[0]!;
    expect(proof.ok).toBe(false);
    expect(proof.ranges[0]).toContain(range);
    expect(report.steps.find((s) => s.name === "verify: test failover of machine-2")!.state).toBe("failed");
    expect(report.steps.find((s) => s.name === "cleanup: web: cleanup machine-2")!.state).toBe("succeeded");
    expect((await status("machine-2")).testFailover).toBeNull();
    expect(readFileSync(join(work, "bad", "junit.xml"), "utf8")).toContain(`<failure message="disk 0 differs from the source at sequence`);
  }, 900_000);
});
