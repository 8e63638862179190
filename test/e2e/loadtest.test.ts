import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { LoadReport } from "../../cli/loadtest/index.js";
import { browserMissing, chartStates, withPage } from "../support/browser.js";
import { srlab, srlabJson, srlabOk } from "../support/cli.js";

interface Status {
  machines: Array<{ name: string; state: string; disks: Array<{ sizeBytes: number }> }>;
}

const dir = mkdtempSync(join(tmpdir(), "srlab-loadtest-"));
const out = (name: string) => join(dir, "reports", name);
const report = (name: string) => JSON.parse(readFileSync(join(out(name), "report.json"), "utf8")) as LoadReport;

beforeAll(async () => {
  await srlabOk(["up", "--detach", "--dir", dir, "--machines", "1", "--disk-size", "16MiB", "--time-unit", "1s"], 300_000);
});

afterAll(async () => {
  await srlab(["down", "--dir", dir]);
  rmSync(dir, { recursive: true, force: true });
});

async function checkReportPage(file: string, ctx: { skip: (reason: string) => void }, expectCharts: string[]): Promise<void> {
  const missing = browserMissing();
  if (missing) return ctx.skip(missing);
  await withPage(file, async (o) => {
    await o.page.waitForFunction(() => document.querySelectorAll("[data-chart]:not([data-drawn])").length === 0);
    const charts = await chartStates(o.page);
    for (const id of expectCharts) expect(charts.map((c) => c.id)).toContain(id);
    for (const c of charts) expect([c.id, c.drawn, c.points > 0]).toEqual([c.id, "true", true]);
    o.assertNoErrors({ offline: true });
  });
}

describe("srlab loadtest", () => {
  test("a bad spec gets one clear line and exit 1 before anything starts", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--profile", "nope"], /unknown profile "nope"/],
      [["--rate=-5MB/s"], /--rate: must not be negative/],
      [["--threshold", "rpo.p99 1s"], /malformed threshold/],
    ];
    for (const [args, message] of cases) {
      const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--report", out("bad"), ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(out("bad"))).toBe(false);
    const status = await srlabJson<Status>(["status", "--dir", dir]);
    expect(status.machines.map((m) => m.name)).toEqual(["machine-1"]);
  });

  test("srlab up --machines N on an existing lab adds the machines it lacks, with the lab's disks", async () => {
    await srlabOk(["up", "--detach", "--dir", dir, "--machines", "3"], 300_000);
    const status = await srlabJson<Status>(["status", "--dir", dir]);
    expect(status.machines.map((m) => m.name).sort()).toEqual(["machine-1", "machine-2", "machine-3"]);
    for (const m of status.machines) expect(m.disks[0]!.sizeBytes).toBe(16 * 1024 * 1024);
  });

  test("3 machines on Azurite: samples, verified replicas, report.json and report.html", async (ctx) => {
    const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--profile", "oltp", "--rate", "1MB/s", "--duration", "4s", "--threshold", "alerts.critical>=0", "--report", out("first")], 600_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/loadtest phase=load t=\d+s\/4s captured=/);
    expect(r.stdout).toMatch(/^PASSED: passed: every replica equals its source/m);
    const rep = report("first");
    expect(rep.machines.map((m) => [m.name, m.verified])).toEqual([["machine-1", true], ["machine-2", true], ["machine-3", true]]);
    expect(rep.summary.verified).toBe(true);
    const during = rep.samples.filter((s) => s.t >= 0);
    expect(during.length).toBeGreaterThanOrEqual(4);
    expect(Object.keys(during[0]!.machines).sort()).toEqual(["machine-1", "machine-2", "machine-3"]);
    expect(rep.summary.bytes.captured).toBeGreaterThan(3 * 1e6);
    expect(rep.summary.bytes.uploaded).toBeGreaterThan(0);
    expect(Object.keys(during[0]!.processServers)).toContain("process-server-1");
    expect(rep.capacityPlan.processServers).toBeGreaterThan(0);
    expect(rep.capacityPlan.method).toMatch(/95th percentile.*Deployment Planner/);
    await checkReportPage(join(out("first"), "report.html"), ctx, ["throughput", "rpo", "cache-free", "backlog", "cpu", "memory", "rpo-distribution"]);
  });

  test("a threshold that cannot hold exits 99 and names itself; --compare draws both runs", async (ctx) => {
    const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--profile", "log", "--rate", "512KB/s", "--duration", "3s", "--threshold", "throughput.mean>10GB/s", "--compare", out("first"), "--report", out("second")], 600_000);
    expect(r.code, r.stderr + r.stdout).toBe(99);
    expect(r.stdout).toMatch(/threshold breached: throughput\.mean>10GB\/s \(actual [\d.]+\)/);
    const rep = report("second");
    expect(rep.thresholds).toEqual([expect.objectContaining({ expression: "throughput.mean>10GB/s", passed: false })]);
    expect(rep.verdict.exitCode).toBe(99);
    const html = readFileSync(join(out("second"), "report.html"), "utf8");
    expect(html).toContain(`captured (${report("first").id})`);
    expect(html).toContain(`compared with ${report("first").id}`);
    await checkReportPage(join(out("second"), "report.html"), ctx, ["throughput", "rpo"]);
  });

  test("a fio job file runs through every machine's NBD export", async (ctx) => {
    if (spawnSync("fio", ["--enghelp=nbd"], { stdio: "ignore" }).status !== 0) return ctx.skip("fio with the nbd engine not installed");
    const job = join(dir, "small.fio");
    // fio expands ${SRLAB_NBD_URI} from the environment srlab gives each run.
    writeFileSync(job, "[global]\nioengine=nbd\nuri=$" + "{SRLAB_NBD_URI}\nsize=8m\n\n[writes]\nrw=randwrite\nbs=4k\niodepth=8\nio_size=2m\nrandseed=3\n");
    const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--fio", job, "--threshold", "latency.p99<60s", "--report", out("fio")], 600_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const rep = report("fio");
    expect(rep.spec.via).toBe("nbd");
    expect(rep.latency?.count).toBe(3 * 512);
    expect(rep.summary.latencyMs?.p99).toBeGreaterThan(0);
    expect(rep.machines.every((m) => m.verified)).toBe(true);
    expect(readdirSync(join(out("fio"), "fio")).sort()).toEqual(["machine-1.json", "machine-2.json", "machine-3.json"]);
    await checkReportPage(join(out("fio"), "report.html"), ctx, ["latency"]);
  });
});
