import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect } from "vitest";
import { LabLayout } from "../../cli/lab/index.js";
import { srlabJson, srlabOk } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { REPO_ROOT } from "../support/dist.js";
import { type MetricFamily, parseExposition } from "../support/prometheus-text.js";
import { test } from "../support/lab.js";
import { metricNames } from "../support/promql-metrics.js";
import { type ReplicationView, waitCaughtUp } from "../support/replication.js";

let dir: string;

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Every daemon's families, scraped over HTTP from the targets `status --prometheus-sd` printed. */
const scraped = new Map<string, { role: string; families: Map<string, MetricFamily> }>();

test.beforeAll(async ({ startLab }) => {
  ({ dir } = await startLab({ name: "metrics", up: ["--machines", "2", "--disk-size", "16MiB", "--time-unit", "1s"] }));
  await srlabOk(["protect", "machine-1", "--dir", dir, "--wait"]);
  await srlabOk(["workload", "machine-1", "--dir", dir, "--duration", "2s", "--rate", "2MB/s"]);
  await waitCaughtUp(async () => {
    const s = await srlabJson<{ machines: Array<ReplicationView & { name: string }> }>(["status", "--dir", dir]);
    return s.machines.find((m) => m.name === "machine-1")!;
  });
  // One more heartbeat so the process server's gauges carry the caught-up figures.
  await new Promise((r) => setTimeout(r, 1_500));
});

afterAll(() => checkCaughtUpReplicas(dir));

// prom-client's default Node.js metrics name three gauges *_total; the library fixes those names.
const LIBRARY_GAUGES_NAMED_TOTAL = new Set(["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]);
// Labels with a small, known set of values; anything else (paths, sequence numbers, job ids, error text) is refused.
const BOUNDED_LABELS = new Set(["component", "machine", "machine_id", "code", "type", "kind", "mode", "state", "process_server", "daemon", "role", "le"]);
const NON_BASE_UNITS = /_(milliseconds|millis|ms|microseconds|us|nanoseconds|ns|minutes|hours|days|kilobytes|kb|kib|megabytes|mb|mib|gigabytes|gb|gib|percent|pct)(_|$)/;
const PREFIX: Record<string, string> = { "config-server": "srlab_cs_", "process-server": "srlab_ps_", "master-target": "srlab_mt_", "mobility-agent": "srlab_agent_" };

describe("metrics", () => {
  test("status --prometheus-sd lists every daemon's /metrics, and each answers in the exposition format", async () => {
    const groups = JSON.parse((await srlabOk(["status", "--dir", dir, "--prometheus-sd"])).stdout) as TargetGroup[];
    const manifest = new LabLayout(dir).read();
    const daemons = manifest.components.filter((c) => c.role !== "azurite").map((c) => c.name);
    expect(groups.map((g) => g.labels.srlab_daemon).sort()).toEqual([...daemons].sort());
    for (const g of groups) {
      expect(g.targets).toHaveLength(1);
      expect(g.targets[0]).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(Object.keys(PREFIX)).toContain(g.labels.srlab_role);
      expect(g.labels.srlab_lab).toBe(new LabLayout(dir).dir);
      const res = await fetch(`http://${g.targets[0]}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      scraped.set(g.labels.srlab_daemon!, { role: g.labels.srlab_role!, families: parseExposition(await res.text()) });
    }
    expect(new Set([...scraped.values()].map((s) => s.role))).toEqual(new Set(Object.keys(PREFIX)));
  });

  test("every name follows Prometheus naming: typed, documented, base units, _total exactly on counters, bounded labels", () => {
    expect(scraped.size).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const [daemon, { role, families }] of scraped) {
      for (const f of families.values()) {
        const where = `${daemon}: ${f.name}`;
        if (!f.type) problems.push(`${where} has no # TYPE`);
        if (!f.help) problems.push(`${where} has no # HELP`);
        if (!/^[a-z_][a-z0-9_]*$/.test(f.name)) problems.push(`${where} is not snake_case`);
        if (f.type === "counter" && !f.name.endsWith("_total")) problems.push(`${where} is a counter without _total`);
        if (f.type !== "counter" && f.name.endsWith("_total") && !LIBRARY_GAUGES_NAMED_TOTAL.has(f.name)) problems.push(`${where} is a ${f.type} named _total`);
        if (!f.name.startsWith("srlab_")) continue;
        if (!f.name.startsWith(PREFIX[role]!)) problems.push(`${where} does not start with ${PREFIX[role]}`);
        if (NON_BASE_UNITS.test(f.name)) problems.push(`${where} is not in base units (seconds, bytes, ratio)`);
        if (f.type === "histogram" && !/_(seconds|bytes)$/.test(f.name)) problems.push(`${where} is a histogram without a unit`);
        for (const s of f.samples) {
          if (s.labels.component !== role) problems.push(`${where} lacks component="${role}"`);
          for (const label of Object.keys(s.labels)) if (!BOUNDED_LABELS.has(label)) problems.push(`${where} has unbounded label ${label}`);
        }
        // Lab scale: a handful of series per machine and daemon, never one per write or sequence.
        const series = new Set(f.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`)).size;
        if (series > 40) problems.push(`${where} has ${series} series`);
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  test("the daemons' series agree: one machine id, its name, its RPO and capture mode", () => {
    const families = (role: string) => [...scraped.values()].filter((s) => s.role === role).map((s) => s.families);
    const [cs] = families("config-server");
    const info = cs!.get("srlab_cs_machine_info")!.samples;
    const machine1 = info.find((s) => s.labels.machine === "machine-1")!;
    expect(machine1.labels).toMatchObject({ state: "protected", process_server: expect.any(String) });
    expect(cs!.get("srlab_cs_machine_rpo_seconds")!.samples.find((s) => s.labels.machine === "machine-1")?.value).toBe(0);
    expect(cs!.get("srlab_cs_daemon_health_severity")!.samples.length).toBeGreaterThanOrEqual(5);

    // The process server labels by machine_id; the configuration server's info maps it to the name.
    const psSeries = families("process-server").flatMap((f) => f.get("srlab_ps_received_bytes_total")?.samples ?? []);
    expect(psSeries.map((s) => s.labels.machine_id)).toContain(machine1.labels.machine_id);
    expect(psSeries.find((s) => s.labels.machine_id === machine1.labels.machine_id)!.value).toBeGreaterThan(0);
    const ps = families("process-server").find((f) => f.get("srlab_ps_rpo_seconds")?.samples.some((s) => s.labels.machine_id === machine1.labels.machine_id))!;
    expect(ps.get("srlab_ps_cache_free_ratio")!.samples[0]!.value).toBeGreaterThan(0);
    expect(ps.get("srlab_ps_cache_free_ratio")!.samples[0]!.value).toBeLessThanOrEqual(1);
    expect(ps.get("srlab_ps_upload_backlog_bytes")!.samples[0]!.value).toBe(0);
    const blockCache = ps.get("srlab_ps_apply_block_cache_bytes")!.samples[0]!.value;
    expect(blockCache).toBeGreaterThanOrEqual(0);
    expect(blockCache).toBeLessThanOrEqual(512 * 1024 * 1024);

    const agent = [...scraped.entries()].find(([name]) => name === "machine-1")![1].families;
    expect(agent.get("srlab_agent_rpo_seconds")!.samples).toEqual([expect.objectContaining({ labels: { machine: "machine-1", component: "mobility-agent" }, value: 0 })]);
    expect(agent.get("srlab_agent_acked_bytes_total")!.samples[0]!.value).toBeGreaterThanOrEqual(4 * 1024 * 1024 * 0.5);
    const modes = agent.get("srlab_agent_capture_mode")!.samples;
    expect(modes.map((s) => s.labels.mode).sort()).toEqual(["bitmap", "data", "metadata"]);
    expect(modes.filter((s) => s.value === 1)).toHaveLength(1);
  });

  test("every metric the Grafana dashboard queries is one the daemons export", () => {
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "deploy/grafana/srlab.json"), "utf8")) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ definition?: string }> };
    };
    const exported = new Set<string>();
    // Declared families count (a labelled counter has no sample until its first increment).
    for (const { families } of scraped.values()) {
      for (const f of families.values()) {
        exported.add(f.name);
        if (f.type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(f.name + suffix);
      }
    }
    expect(exported.size).toBeGreaterThan(0);
    const missing: string[] = [];
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.filter((v) => v.definition).map((v) => ({ where: "variable", expr: v.definition!.replace(/^label_values\(([^,]+),.*$/, "$1") })),
    ];
    for (const { where, expr } of exprs) {
      // `up` is the series Prometheus itself records for every target it scrapes.
      for (const name of metricNames(expr)) if (name !== "up" && !exported.has(name)) missing.push(`${where}: ${name}`);
    }
    expect(missing).toEqual([]);
  });
});

