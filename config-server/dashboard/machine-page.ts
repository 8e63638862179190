import { type ChartSpec, chart, figures, formatBytes, formatRate, html, markerStrip, type SafeHtml, section, table, type StripMarker } from "../../common/html/index.js";
import { actionButtons } from "./actions.js";
import { type Machine, type RecoveryPoint, RecoveryPointType, type TelemetrySample } from "../../proto/index.js";
import { jobList } from "./jobs-page.js";
import type { ChartPoint, DashboardPage } from "./layout.js";
import { ago, clock, healthLabel, healthWithReasons, rpoText } from "./labels.js";
import { captureText, directionText, rpoCell, stateText } from "./machines-page.js";
import { rate, type Snapshot } from "./snapshot.js";

const isApp = (p: RecoveryPoint) => p.type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT;

/** One machine: its figures, RPO and throughput over the window, recovery points on a timeline, its jobs. */
export function machinePage(snap: Snapshot, name: string): DashboardPage | undefined {
  const found = snap.machineByName(name);
  if (!found) return undefined;
  const id = found.machineId;
  const machine = () => snap.machines().find((m) => m.machineId === id) ?? found;
  const threshold = snap.policies().find((p) => p.name === found.policyName)?.rpoThresholdSeconds;
  return {
    title: `Machine ${found.name}`,
    charts: true,
    parts: [
      { region: "summary", render: () => summary(machine(), snap) },
      ...(snap.source.actionsEnabled ? [{ region: "actions", render: () => section("Actions", actionButtons(machine())) }] : []),
      { fixed: () => html`<div class="charts">${chart(rpoChart(snap, id, threshold))}${chart(throughputChart(snap, id))}</div>` },
      { region: "points", render: () => section("Recovery points", points(snap, machine())) },
      { region: "jobs", render: () => section("Jobs", jobList(snap.jobs().filter((j) => j.machineId === id), snap, "no jobs for this machine")) },
    ],
    chartPoints: (sample, previous) => machineChartPoints(id, sample, previous),
  };
}

function summary(m: Machine, snap: Snapshot): SafeHtml {
  const s = m.stats;
  const health = healthLabel(m.health);
  return html`${figures([
    { label: "state", value: stateText(m) },
    { label: "health", value: health, kind: health === "normal" ? "pass" : health === "warning" ? "warn" : health === "critical" ? "fail" : undefined },
    { label: "RPO", value: rpoText(s?.rpoSeconds ?? 0) },
    { label: "pending", value: formatBytes(s?.pendingBytes ?? 0) },
    { label: "throughput", value: formatRate(s?.throughputBytesPerSecond ?? 0) },
    { label: "capture mode", value: captureText(m) },
  ])}
<p>RPO now ${rpoCell(m)} · ${directionText(m)} · process server ${snap.componentName(m.processServerId) || "–"} · policy ${m.policyName || "–"} · sequences captured ${s?.capturedSequence ?? 0} / received ${s?.receivedSequence ?? 0} / uploaded ${s?.uploadedSequence ?? 0} / processed ${s?.processedSequence ?? 0}</p>
${m.issues.length ? healthWithReasons(m.health, m.issues) : ""}
${m.resyncRequired ? html`<p class="reason">resync required: ${m.resyncReason}${m.nextResync ? ` (next run ${clock(m.nextResync, snap.nowMs)} UTC)` : ""}</p>` : ""}
${table(
  [
    { header: "disk", cell: (d: Machine["disks"][number]) => String(d.index) },
    { header: "size", numeric: true, cell: (d) => formatBytes(d.sizeBytes) },
    { header: "image", cell: (d) => d.imagePath },
    { header: "NBD", cell: (d) => html`<span class="code">${d.nbdUri}</span>` },
  ],
  m.disks,
  "no disks reported",
)}`;
}

const seconds = (s: TelemetrySample) => (s.time?.getTime() ?? 0) / 1000;

function rpoChart(snap: Snapshot, id: string, threshold: number | undefined): ChartSpec {
  const samples = snap.samples();
  return {
    id: "rpo",
    title: "RPO",
    note: "Age of the oldest write not yet in storage, one value per sample.",
    xKind: "time",
    unit: "s",
    x: samples.map(seconds),
    series: [{ label: "RPO", values: samples.map((s) => s.machines.find((m) => m.machineId === id)?.rpoSeconds ?? null) }],
    thresholds: threshold ? [{ label: `policy RPO threshold ${threshold} s`, value: threshold, level: "warning" }] : [],
    maxPoints: Math.max(samples.length, snap.source.sampler.windowSeconds / (snap.source.sampler.intervalMs / 1000)),
  };
}

const RATES = ["capturedBytes", "uploadedBytes", "processedBytes"] as const;

function ratesBetween(id: string, prev: TelemetrySample | undefined, next: TelemetrySample): Array<number | null> {
  const a = prev?.machines.find((m) => m.machineId === id);
  const b = next.machines.find((m) => m.machineId === id);
  const dt = prev ? seconds(next) - seconds(prev) : 0;
  return RATES.map((k) => rate(a?.[k], b?.[k], dt));
}

function throughputChart(snap: Snapshot, id: string): ChartSpec {
  const samples = snap.samples();
  const values = samples.map((s, i) => ratesBetween(id, samples[i - 1], s));
  return {
    id: "throughput",
    title: "Throughput",
    note: "Captured by the agent, uploaded to storage and applied to the replica.",
    xKind: "time",
    unit: "bytes/s",
    x: samples.map(seconds),
    series: ["captured", "uploaded", "processed"].map((label, k) => ({ label, values: values.map((v) => v[k] ?? null) })),
    maxPoints: Math.max(samples.length, snap.source.sampler.windowSeconds / (snap.source.sampler.intervalMs / 1000)),
  };
}

function machineChartPoints(id: string, sample: TelemetrySample, previous: TelemetrySample | undefined): ChartPoint[] {
  const m = sample.machines.find((x) => x.machineId === id);
  return [
    { id: "rpo", x: seconds(sample), values: [m ? m.rpoSeconds : null] },
    { id: "throughput", x: seconds(sample), values: ratesBetween(id, previous, sample) },
  ];
}

/**
 * Recovery points on a timeline with the range the machine can be recovered to: any write from
 * the oldest kept point up to the newest write in storage (now minus the RPO).
 */
function points(snap: Snapshot, m: Machine): SafeHtml {
  const all = snap.points(m.machineId);
  const now = snap.nowMs;
  const windowStart = now - snap.source.sampler.windowSeconds * 1000;
  const first = all[0]?.time?.getTime();
  const startMs = first === undefined ? now - 300_000 : Math.max(windowStart, Math.min(first, now - 60_000));
  const newestInStorage = now - (m.stats?.rpoSeconds ?? 0) * 1000;
  const shown = all.filter((p) => (p.time?.getTime() ?? 0) >= startMs);
  const markers: StripMarker[] = shown.map((p) => ({
    atMs: p.time!.getTime(),
    kind: isApp(p) ? "app-consistent" : "crash-consistent",
    label: isApp(p) ? p.tagName || "app-consistent" : `seq ${p.sequence}`,
    named: isApp(p),
    data: { "point-id": p.recoveryPointId, sequence: p.sequence },
  }));
  const strip = markerStrip({
    startMs,
    endMs: now,
    ranges: first === undefined ? [] : [{ fromMs: first, toMs: newestInStorage, label: "recoverable", kind: "recoverable" }],
    markers,
    empty: "no recovery points yet",
  });
  const recent = [...all].reverse().slice(0, 10);
  return html`<p>${all.length} points kept${first === undefined ? "" : html`, recoverable from ${clock(all[0]!.time, now)} to ${clock(new Date(newestInStorage), now)} UTC (any single write in between)`}; ${all.filter(isApp).length} app-consistent.</p>
${strip}
${table(
  [
    { header: "time (UTC)", cell: (p: RecoveryPoint) => `${clock(p.time, now)} (${ago(p.time, now)})` },
    { header: "type", cell: (p) => (isApp(p) ? `app-consistent ${p.tagName}` : "crash-consistent") },
    { header: "sequence", numeric: true, cell: (p) => p.sequence },
    { header: "disks", numeric: true, cell: (p) => `${p.disksCovered} of ${p.disksTotal}` },
    { header: "processed", cell: (p) => (p.processed ? "yes" : "not yet") },
  ],
  recent,
  "no recovery points yet",
)}`;
}
