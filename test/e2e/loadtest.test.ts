import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect } from "vitest";
import type { LoadReport } from "../../cli/loadtest/index.js";
import { browserMissing, chartStates, withPage } from "../support/browser.js";
import { CLI_MAIN, srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { test } from "../support/lab.js";

interface JobDoc {
  jobId: string;
  type: string;
  state: string;
  error: string | null;
  reports: string[];
  steps: Array<{ name: string; state: string }>;
  startTime: string | null;
}

interface Status {
  machines: Array<{ name: string; state: string; disks: Array<{ sizeBytes: number }> }>;
}

let dir: string;
const out = (name: string) => join(dir, "reports", name);
const report = (name: string) => JSON.parse(readFileSync(join(out(name), "report.json"), "utf8")) as LoadReport;

test.beforeAll(async ({ startLab }) => {
  ({ dir } = await startLab({ name: "loadtest", up: ["--machines", "1", "--disk-size", "16MiB", "--time-unit", "1s"], upTimeoutMs: 300_000 }));
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

  test("3 machines on Azurite: samples, verified replicas, report.json and report.html", async ({ skip }) => {
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
    await checkReportPage(join(out("first"), "report.html"), { skip }, ["throughput", "rpo", "cache-free", "backlog", "cpu", "memory", "rpo-distribution"]);

    // The run is a job like any other, and the dashboard serves its report.
    const jobs = await srlabJson<JobDoc[]>(["jobs", "--dir", dir]);
    const run = jobs.find((j) => j.type === "LoadTest")!;
    expect(run.state).toBe("succeeded");
    expect(run.steps.map((st) => [st.name, st.state])).toEqual(["machines", "protection", "load", "drain", "verify", "report"].map((n) => [n, "succeeded"]));
    expect(run.reports).toEqual(["report.html", "report.json"]);
    const { dashboardUrl } = await srlabJson<{ dashboardUrl: string }>(["dashboard", "--dir", dir]);
    const credential = readFileSync(join(dir, "data", "config-server", "admin.credential"), "utf8").trim();
    const served = await fetch(new URL(`jobs/${run.jobId}/report.html`, dashboardUrl), { headers: { authorization: `Bearer ${credential}` } });
    expect(served.status).toBe(200);
    expect(await served.text()).toBe(readFileSync(join(out("first"), "report.html"), "utf8"));
    expect((await fetch(new URL(`jobs/${run.jobId}/report.html`, dashboardUrl))).status).toBe(401);
  });

  test("Ctrl-C stops the load on every disk and leaves a partial report; the run's job ends Cancelled", async () => {
    await srlabOk(["disk", "add", "machine-1", "--dir", dir, "--size", "16MiB"], 300_000);
    const child = spawn(process.execPath, [CLI_MAIN, "loadtest", "--dir", dir, "--machines", "1", "--profile", "zipf", "--rate", "1MB/s", "--duration", "120s", "--report", out("interrupted")], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await waitUntil("the load to run", async () => /loadtest phase=load t=[2-9]s/.test(stderr), 300_000);
    const startedLoad = Date.now();
    child.kill("SIGINT");
    const code = await exited;
    expect(code, stderr + stdout).toBe(130);
    // Well before the 120 s the load was set to run.
    expect(Date.now() - startedLoad).toBeLessThan(60_000);
    const rep = report("interrupted");
    expect(rep.verdict).toEqual(expect.objectContaining({ passed: false, exitCode: 130 }));
    expect(rep.verdict.reason).toMatch(/^partial report: interrupted by the user \(Ctrl-C\)/);
    expect(rep.samples.filter((x) => x.t >= 0).length).toBeGreaterThan(0);
    expect(existsSync(join(out("interrupted"), "report.html"))).toBe(true);

    const jobs = await srlabJson<JobDoc[]>(["jobs", "--dir", dir]);
    const run = jobs.find((j) => j.type === "LoadTest" && j.state !== "succeeded")!;
    expect(run.state).toBe("cancelled");
    expect(run.reports).toEqual(["report.html", "report.json"]);
    // One generator per disk, both stopped.
    const loadStart = Date.parse(run.startTime!);
    const workloads = jobs.filter((j) => j.type === "Workload" && Date.parse(j.startTime ?? "0") >= loadStart);
    expect(workloads).toHaveLength(2);
    await waitUntil("the workloads to end cancelled", async () => {
      const now = await srlabJson<JobDoc[]>(["jobs", "--dir", dir]);
      return workloads.every((w) => now.find((j) => j.jobId === w.jobId)?.state === "cancelled");
    }, 30_000);
  });

  test("a threshold that cannot hold exits 99 and names itself; --compare draws both runs", async ({ skip }) => {
    const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--profile", "log", "--rate", "512KB/s", "--duration", "3s", "--threshold", "throughput.mean>10GB/s", "--compare", out("first"), "--report", out("second")], 600_000);
    expect(r.code, r.stderr + r.stdout).toBe(99);
    expect(r.stdout).toMatch(/threshold breached: throughput\.mean>10GB\/s \(actual [\d.]+\)/);
    const rep = report("second");
    expect(rep.thresholds).toEqual([expect.objectContaining({ expression: "throughput.mean>10GB/s", passed: false })]);
    expect(rep.verdict.exitCode).toBe(99);
    const html = readFileSync(join(out("second"), "report.html"), "utf8");
    expect(html).toContain(`captured (${report("first").id})`);
    expect(html).toContain(`compared with ${report("first").id}`);
    await checkReportPage(join(out("second"), "report.html"), { skip }, ["throughput", "rpo"]);
  });

  test("a fio job file runs through every disk's NBD export", async ({ skip }) => {
    if (spawnSync("fio", ["--enghelp=nbd"], { stdio: "ignore" }).status !== 0) return skip("fio with the nbd engine not installed");
    const job = join(dir, "small.fio");
    // fio expands ${SRLAB_NBD_URI} from the environment srlab gives each run.
    writeFileSync(job, "[global]\nioengine=nbd\nuri=$" + "{SRLAB_NBD_URI}\nsize=8m\n\n[writes]\nrw=randwrite\nbs=4k\niodepth=8\nio_size=2m\nrandseed=3\n");
    const r = await srlab(["loadtest", "--dir", dir, "--machines", "3", "--fio", job, "--threshold", "latency.p99<60s", "--report", out("fio")], 600_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const rep = report("fio");
    expect(rep.spec.via).toBe("nbd");
    // machine-1 has two disks since the Ctrl-C test: fio runs once per disk.
    expect(rep.latency?.count).toBe(4 * 512);
    expect(rep.summary.latencyMs?.p99).toBeGreaterThan(0);
    expect(rep.machines.every((m) => m.verified)).toBe(true);
    expect(readdirSync(join(out("fio"), "fio")).sort()).toEqual(["machine-1-disk0.json", "machine-1-disk1.json", "machine-2.json", "machine-3.json"]);
    await checkReportPage(join(out("fio"), "report.html"), { skip }, ["latency"]);
  });
});
