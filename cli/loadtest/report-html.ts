import {
  badge,
  type ChartSeries,
  type ChartSpec,
  chartGrid,
  figures,
  formatBytes,
  formatDuration,
  formatPercent,
  formatRate,
  html,
  renderPage,
  type SafeHtml,
  section,
  table,
  timeline,
} from "../../common/html/index.js";
import { rates } from "./samples.js";
import type { LoadReport } from "./report.js";

/** Series values for each x of the new run; the old run's samples are placed at their own t. */
interface Run {
  label: string;
  report: LoadReport;
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);

/** A common x axis (whole seconds since the load started) for one or two runs. */
function axis(runs: Run[]): number[] {
  const ts = new Set<number>();
  for (const r of runs) for (const s of r.report.samples) ts.add(Math.round(s.t));
  return [...ts].sort((a, b) => a - b);
}

/** Places per-sample values of a run on the shared axis (null where the run has no sample). */
function place(x: number[], run: Run, values: Array<number | null>): Array<number | null> {
  const at = new Map<number, number | null>();
  run.report.samples.forEach((s, i) => {
    at.set(Math.round(s.t), values[i] ?? null);
  });
  return x.map((t) => (at.has(t) ? round(at.get(t)!) : null));
}

function names<T>(r: LoadReport, pick: (s: LoadReport["samples"][number]) => Record<string, T>): string[] {
  return [...new Set(r.samples.flatMap((s) => Object.keys(pick(s))))].sort();
}

function charts(runs: Run[]): ChartSpec[] {
  const x = axis(runs);
  const [cur] = runs;
  const old = runs[1];
  const th = cur!.report.environment.alertThresholds;
  const tag = (run: Run, label: string) => (old ? `${label} (${run.label})` : label);
  const dashed = (run: Run) => run !== cur;
  const out: ChartSpec[] = [];

  const throughput: ChartSeries[] = [];
  for (const run of runs) {
    for (const [field, label] of [["capturedBytes", "captured"], ["uploadedBytes", "uploaded"], ["processedBytes", "processed"]] as const) {
      throughput.push({ label: tag(run, label), values: place(x, run, rates(run.report.samples, field)), dashed: dashed(run) });
    }
  }
  out.push({ id: "throughput", title: "Throughput", note: "Write payload per second over all machines: captured by the agents, uploaded to storage, processed into the replicas.", x, unit: "bytes/s", series: throughput });

  const rpo: ChartSeries[] = [];
  for (const m of names(cur!.report, (s) => s.machines)) {
    rpo.push({ label: m, values: place(x, cur!, cur!.report.samples.map((s) => s.machines[m]?.rpoSeconds ?? null)) });
  }
  if (old) rpo.push({ label: `max (${old.label})`, values: place(x, old, old.report.samples.map((s) => maxOf(Object.values(s.machines).map((m) => m.rpoSeconds)))), dashed: true });
  out.push({ id: "rpo", title: "RPO per machine", note: "Age of the oldest write not yet in storage.", x, unit: "s", series: rpo });

  const psSeries = (field: "cacheFreePercent" | "cacheUsedBytes" | "backlogSeconds") => {
    const series: ChartSeries[] = [];
    for (const run of runs) {
      for (const ps of names(run.report, (s) => s.processServers)) {
        series.push({ label: tag(run, ps), values: place(x, run, run.report.samples.map((s) => s.processServers[ps]?.[field] ?? null)), dashed: dashed(run) });
      }
    }
    return series;
  };
  out.push({
    id: "cache-free",
    title: "Process-server cache free space",
    note: "ASR alerts below 30 % (warning) and 25 % (critical).",
    x,
    unit: "%",
    series: psSeries("cacheFreePercent"),
    thresholds: th ? [{ label: `warning ${th.cacheFreeWarningPercent}%`, value: th.cacheFreeWarningPercent, level: "warning" }, { label: `critical ${th.cacheFreeCriticalPercent}%`, value: th.cacheFreeCriticalPercent, level: "critical" }] : [],
  });
  out.push({ id: "cache-used", title: "Process-server cache used", x, unit: "bytes", series: psSeries("cacheUsedBytes") });
  out.push({
    id: "backlog",
    title: "Upload backlog",
    note: "Age of the oldest received write not yet uploaded; ASR alerts at 30 and 45 minutes (time units).",
    x,
    unit: "s",
    series: psSeries("backlogSeconds"),
    thresholds: th ? [{ label: `warning ${th.backlogWarningSeconds} s`, value: th.backlogWarningSeconds, level: "warning" }, { label: `critical ${th.backlogCriticalSeconds} s`, value: th.backlogCriticalSeconds, level: "critical" }] : [],
  });

  const daemons = names(cur!.report, (s) => s.daemons);
  out.push({
    id: "cpu",
    title: "CPU per daemon",
    note: "Share of all the host's cores; ASR alerts on a process server above 80 % and 95 %.",
    x,
    unit: "%",
    series: daemons.map((d) => ({ label: d, values: place(x, cur!, cur!.report.samples.map((s) => s.daemons[d]?.cpuPercent ?? null)) })),
    thresholds: th ? [{ label: `warning ${th.cpuWarningPercent}%`, value: th.cpuWarningPercent, level: "warning" }, { label: `critical ${th.cpuCriticalPercent}%`, value: th.cpuCriticalPercent, level: "critical" }] : [],
  });
  out.push({
    id: "memory",
    title: "Memory per daemon",
    note: "Resident memory of each daemon's process.",
    x,
    unit: "bytes",
    series: daemons.map((d) => ({ label: d, values: place(x, cur!, cur!.report.samples.map((s) => s.daemons[d]?.memoryBytes ?? null)) })),
  });

  const rpoDist = rpoDistribution(runs);
  if (rpoDist) out.push(rpoDist);
  const lat = latencyDistribution(runs);
  if (lat) out.push(lat);
  return out.filter((c) => c.series.length > 0);
}

function maxOf(v: number[]): number | null {
  return v.length ? Math.max(...v) : null;
}

/** Buckets shared by the runs (linear, or logarithmic for long-tailed latencies), as a bar chart. */
function distribution(id: string, title: string, note: string, unit: string, scale: "linear" | "log", runs: Array<{ label: string; values: Array<[number, number]> }>): ChartSpec | undefined {
  const all = runs.flatMap((r) => r.values.map(([v]) => v));
  if (all.length === 0) return undefined;
  const n = 12;
  const hi = Math.max(...all, 1e-6) * 1.0001;
  const lo = scale === "log" ? Math.max(Math.min(...all.filter((v) => v > 0)), hi / 1e6) : 0;
  const edges = Array.from({ length: n }, (_, i) => (scale === "log" ? lo * (hi / lo) ** ((i + 1) / n) : (hi * (i + 1)) / n));
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
  return {
    id,
    title,
    note,
    x: edges.map((_, i) => i),
    xKind: "category",
    xLabels: edges.map((e) => `≤${fmt(e)}`),
    unit: "count",
    kind: "bars",
    series: runs.map((r, i) => {
      const counts = new Array<number>(n).fill(0);
      for (const [v, c] of r.values) {
        const k = edges.findIndex((e) => v <= e);
        counts[k < 0 ? n - 1 : k]! += c;
      }
      return { label: `${r.label} (${unit})`, values: counts, dashed: i > 0 };
    }),
  };
}

function rpoDistribution(runs: Run[]): ChartSpec | undefined {
  return distribution(
    "rpo-distribution",
    "RPO distribution",
    "Every machine's RPO at every second of the run (the histogram the percentiles come from).",
    "s",
    "linear",
    runs.map((r) => ({ label: r.label, values: r.report.samples.filter((s) => s.t >= 0).flatMap((s) => Object.values(s.machines).map((m) => [m.rpoSeconds, 1] as [number, number])) })),
  );
}

function latencyDistribution(runs: Run[]): ChartSpec | undefined {
  const withLatency = runs.filter((r) => r.report.latency && r.report.latency.count > 0);
  if (withLatency.length === 0) return undefined;
  return distribution("latency", "NBD write latency distribution", "Completion latency of every write fio made through the NBD exports.", "ms", "log", withLatency.map((r) => ({ label: r.label, values: r.report.latency!.buckets })));
}

function delta(cur: number | null, old: number | null | undefined, format: (v: number) => string): SafeHtml {
  if (cur === null) return html`–`;
  if (old === null || old === undefined) return html`${format(cur)}`;
  const d = cur - old;
  const pct = old !== 0 ? ` (${d >= 0 ? "+" : ""}${((d / Math.abs(old)) * 100).toFixed(0)}%)` : "";
  return html`${format(cur)} <span class="delta">vs ${format(old)}${pct}</span>`;
}

/** The self-contained report page of a run (and of the older run it is compared with). */
export function renderReportHtml(report: LoadReport, compareWith?: LoadReport): string {
  const runs: Run[] = [{ label: report.id, report }];
  if (compareWith) runs.push({ label: compareWith.id, report: compareWith });
  const s = report.summary;
  const o = compareWith?.summary;
  const sec = (v: number) => `${v.toFixed(2)} s`;
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const pct = (v: number) => formatPercent(v);
  const rows: Array<{ figure: string; value: SafeHtml }> = [
    { figure: "throughput captured, mean", value: delta(s.throughput.captured.mean, o?.throughput.captured.mean, formatRate) },
    { figure: "throughput uploaded, mean", value: delta(s.throughput.uploaded.mean, o?.throughput.uploaded.mean, formatRate) },
    { figure: "throughput processed, mean", value: delta(s.throughput.processed.mean, o?.throughput.processed.mean, formatRate) },
    { figure: "bytes captured", value: delta(s.bytes.captured, o?.bytes.captured, formatBytes) },
    { figure: "RPO p50", value: delta(s.rpoSeconds.p50, o?.rpoSeconds.p50, sec) },
    { figure: "RPO p90", value: delta(s.rpoSeconds.p90, o?.rpoSeconds.p90, sec) },
    { figure: "RPO p99", value: delta(s.rpoSeconds.p99, o?.rpoSeconds.p99, sec) },
    { figure: "RPO p99.9", value: delta(s.rpoSeconds["p99.9"], o?.rpoSeconds["p99.9"], sec) },
    { figure: "RPO max", value: delta(s.rpoSeconds.max, o?.rpoSeconds.max, sec) },
    { figure: "NBD write latency p50", value: delta(s.latencyMs?.p50 ?? null, o?.latencyMs?.p50, ms) },
    { figure: "NBD write latency p99", value: delta(s.latencyMs?.p99 ?? null, o?.latencyMs?.p99, ms) },
    { figure: "NBD write latency p99.9", value: delta(s.latencyMs?.["p99.9"] ?? null, o?.latencyMs?.["p99.9"], ms) },
    { figure: "cache free, minimum", value: delta(s.cache.freeMinPercent, o?.cache.freeMinPercent, pct) },
    { figure: "upload backlog, maximum", value: delta(s.backlog.maxSeconds, o?.backlog.maxSeconds, sec) },
    { figure: "process-server CPU, maximum", value: delta(s.cpu.maxPercent, o?.cpu.maxPercent, pct) },
    { figure: "drain after the load", value: delta(s.drainSeconds, o?.drainSeconds, sec) },
    { figure: "alerts (warning / critical)", value: html`${s.alerts.warning} / ${s.alerts.critical}${o ? html` <span class="delta">vs ${o.alerts.warning} / ${o.alerts.critical}</span>` : ""}` },
  ];
  const plan = report.capacityPlan;
  const groups = report.spec.groups.map((g) => `${g.machines.length} × ${g.profile}`).join(", ");
  const start = Date.parse(report.startedAt);
  const body: SafeHtml[] = [
    figures([
      { label: "verdict", value: report.verdict.passed ? "passed" : "failed", kind: report.verdict.passed ? "pass" : "fail" },
      { label: "replicas equal their sources", value: s.verified ? "yes" : "no", kind: s.verified ? "pass" : "fail" },
      { label: "captured (mean)", value: formatRate(s.throughput.captured.mean) },
      { label: "RPO p99", value: sec(s.rpoSeconds.p99) },
      { label: "NBD write p99", value: s.latencyMs ? ms(s.latencyMs.p99) : "–" },
      { label: "cache free (min)", value: s.cache.freeMinPercent === null ? "–" : pct(s.cache.freeMinPercent), kind: s.cache.freeMinPercent !== null && s.cache.freeMinPercent < 30 ? "warn" : undefined },
      { label: "alerts", value: `${s.alerts.warning + s.alerts.critical}`, kind: s.alerts.critical ? "fail" : s.alerts.warning ? "warn" : undefined },
    ]),
    html`<p>${report.verdict.reason}</p>`,
    section("Thresholds", table(
      [
        { header: "threshold", cell: (t: LoadReport["thresholds"][number]) => t.expression },
        { header: "actual", cell: (t) => (t.actual === null ? (t.note ?? "–") : String(round(t.actual))), numeric: true },
        { header: "verdict", cell: (t) => badge(t.passed ? "pass" : "breached", t.passed ? "pass" : "fail") },
      ],
      report.thresholds,
      "no thresholds were set",
    )),
    section("Run", timeline(report.phases.map((p) => ({ name: p.name, startMs: p.startMs, endMs: p.endMs, state: p.state })))),
    section(compareWith ? `Summary, compared with ${compareWith.id}` : "Summary", table([
      { header: "figure", cell: (r: (typeof rows)[number]) => r.figure },
      { header: compareWith ? `this run (vs ${compareWith.id})` : "this run", cell: (r) => r.value, numeric: true },
    ], rows)),
    section("Over time", chartGrid(charts(runs))),
    section("Capacity plan", [
      html`<p>For <b>${plan.target.machines}</b> machines of this load (${groups}) to hold an RPO of <b>${formatDuration(plan.target.rpoSeconds * 1000)}</b> with <b>${plan.target.growthPercent}%</b> growth — sized like ASR's Deployment Planner, on the 95th percentile of measured churn per machine plus growth:</p>`,
      table([
        { header: "", cell: (r: [string, string]) => r[0] },
        { header: "", cell: (r) => r[1], numeric: true },
      ], [
        ["churn per machine, 95th percentile (measured)", formatRate(plan.measured.churnP95BytesPerSecond)],
        ["churn per machine, planned (+ growth)", formatRate(plan.plannedChurnPerMachineBytesPerSecond)],
        [`upload rate per process server (measured over ${plan.measured.processServers})`, formatRate(plan.measured.processServerUploadBytesPerSecond)],
        ["process servers needed", String(plan.processServers)],
        ["cache disk per process server", formatBytes(plan.cacheBytesPerProcessServer)],
        ["upload bandwidth", `${(plan.uploadBandwidthBitsPerSecond / 1e6).toFixed(1)} Mbit/s`],
      ] as Array<[string, string]>),
      html`<ul>${plan.notes.map((n) => html`<li>${n}</li>`)}</ul>`,
    ]),
    section("Machines", table([
      { header: "machine", cell: (m: LoadReport["machines"][number]) => m.name },
      { header: "profile", cell: (m) => m.profile },
      { header: "process server", cell: (m) => m.processServer },
      { header: "disks", cell: (m) => m.disks.map((d) => `disk ${d.index} ${formatBytes(d.sizeBytes)} sha256 ${d.sourceSha256.slice(0, 16)}…`).join("; ") },
      { header: "replica equals source", cell: (m) => badge(m.verified ? "yes" : "no", m.verified ? "pass" : "fail") },
    ], report.machines)),
    section("Alerts raised", table([
      { header: "raised at", cell: (a: LoadReport["summary"]["alerts"]["raised"][number]) => `${((Date.parse(a.raisedAt) - start) / 1000).toFixed(0)} s` },
      { header: "component", cell: (a) => a.component },
      { header: "level", cell: (a) => badge(a.level, a.level === "critical" ? "fail" : "warn") },
      { header: "alert", cell: (a) => a.message },
    ], s.alerts.raised, "no process-server alert was raised")),
    section("Environment", html`<p>${report.environment.cpus} × ${report.environment.cpuModel}, ${formatBytes(report.environment.memoryBytes)} memory, Node ${report.environment.node}, srlab ${report.environment.srlabVersion}, storage ${report.environment.storage}, time unit ${report.environment.timeUnitSeconds} s.</p>`),
  ];
  return renderPage({
    title: `srlab load test ${report.id}`,
    subtitle: `${report.startedAt} · ${report.spec.machines} machines (${groups}) via ${report.spec.via}${compareWith ? ` · compared with ${compareWith.id} (dashed)` : ""}`,
    charts: true,
    css: ".delta { color: var(--muted); font-size: 12px; margin-left: 6px; }",
    body,
  });
}
