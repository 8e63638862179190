import { type ChartSpec, chartGrid, formatBytes, formatPercent, html, raw, type SafeHtml, table } from "../../common/html/index.js";
import { type Component, ComponentRole, type ComponentSample, SiteLocation, type TelemetrySample } from "../../proto/index.js";
import type { ChartPoint, DashboardPage } from "./layout.js";
import { ago, enumLabel, healthWithReasons } from "./labels.js";
import type { Snapshot } from "./snapshot.js";

/** A used/capacity bar with ASR's free-space alert levels marked on it. */
function cacheBar(usedPercent: number, warningFree: number, criticalFree: number): SafeHtml {
  const pct = (v: number) => Math.min(100, Math.max(0, v)).toFixed(1);
  return html`<span class="bar" title="cache used ${pct(usedPercent)}%"><span class="fill" style="${raw(`width:${pct(usedPercent)}%`)}"></span><span class="mark warning" style="${raw(`left:${pct(100 - warningFree)}%`)}"></span><span class="mark critical" style="${raw(`left:${pct(100 - criticalFree)}%`)}"></span></span>`;
}

const seconds = (s: TelemetrySample) => (s.time?.getTime() ?? 0) / 1000;

/** Process servers: cache use against ASR's thresholds, upload backlog, CPU and memory, now and over the window. */
export function processServersPage(snap: Snapshot): DashboardPage {
  const t = snap.source.sampler.thresholds;
  // The chart series are fixed when the page is served: the process servers known then.
  const servers = snap.components().filter((c) => c.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER);
  const ids = servers.map((c) => c.componentId);
  const one = (s: TelemetrySample, id: string) => s.components.find((c) => c.componentId === id);
  const pick: Record<string, (c: ComponentSample | undefined) => number | null> = {
    "cache-free": (c) => c?.processServer?.cacheFreePercent ?? null,
    backlog: (c) => c?.processServer?.uploadBacklogSeconds ?? null,
    cpu: (c) => c?.stats?.cpuPercent ?? null,
    memory: (c) => c?.stats?.memoryPercent ?? null,
  };
  const maxPoints = snap.source.sampler.windowSeconds / (snap.source.sampler.intervalMs / 1000);
  const charts = (): ChartSpec[] => {
    const samples = snap.samples();
    const spec = (id: string, title: string, unit: ChartSpec["unit"], note: string, thresholds: ChartSpec["thresholds"]): ChartSpec => ({
      id,
      title,
      note,
      unit,
      xKind: "time",
      x: samples.map(seconds),
      series: servers.map((c) => ({ label: c.name, values: samples.map((s) => pick[id]!(one(s, c.componentId))) })),
      thresholds,
      maxPoints: Math.max(samples.length, maxPoints),
    });
    return [
      spec("cache-free", "Cache free space", "%", "ASR warns below 30% free and is critical below 25%.", [
        { label: `warning < ${t.cacheFreeWarningPercent}%`, value: t.cacheFreeWarningPercent, level: "warning" },
        { label: `critical < ${t.cacheFreeCriticalPercent}%`, value: t.cacheFreeCriticalPercent, level: "critical" },
      ]),
      spec("backlog", "Upload backlog", "s", "Age of the oldest data waiting for upload.", [
        { label: `warning > ${t.backlogWarningSeconds} s`, value: t.backlogWarningSeconds, level: "warning" },
        { label: `critical > ${t.backlogCriticalSeconds} s`, value: t.backlogCriticalSeconds, level: "critical" },
      ]),
      spec("cpu", "CPU", "%", "Of one core; 100% is one core busy.", []),
      spec("memory", "Memory", "%", "Of the host's memory.", [
        { label: `warning > ${t.memoryWarningPercent}%`, value: t.memoryWarningPercent, level: "warning" },
      ]),
    ];
  };
  return {
    title: "Process servers",
    charts: true,
    parts: [{ region: "servers", render: () => serverTable(snap) }, { fixed: () => chartGrid(charts()) }],
    chartPoints: (sample) => Object.keys(pick).map((id): ChartPoint => ({ id, x: seconds(sample), values: ids.map((c) => pick[id]!(one(sample, c))) })),
  };
}

function serverTable(snap: Snapshot): SafeHtml {
  const t = snap.source.sampler.thresholds;
  const latest = snap.source.sampler.samples().at(-1);
  const figures = (id: string) => latest?.components.find((c) => c.componentId === id);
  const servers = snap.components().filter((c) => c.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER);
  const machines = snap.machines();
  return table<Component>(
    [
      { header: "process server", cell: (c) => html`<span data-process-server="${c.name}">${c.name}</span><div class="reason">${enumLabel(SiteLocation, c.location, "SITE_LOCATION_")} · ${c.address}</div>` },
      { header: "health", cell: (c) => healthWithReasons(c.health, c.issues) },
      {
        header: "cache used",
        cell: (c) => {
          const p = figures(c.componentId)?.processServer;
          if (!p) return "–";
          // ASR's levels are about free space on the cache volume, which other files use too: the
          // bar shows the volume, the text what the cache itself holds.
          return html`${cacheBar(100 - p.cacheFreePercent, t.cacheFreeWarningPercent, t.cacheFreeCriticalPercent)} ${formatPercent(p.cacheFreePercent)} free<div class="reason">cache holds ${formatBytes(p.cacheUsedBytes)} of ${formatBytes(p.cacheCapacityBytes)}; warning below ${t.cacheFreeWarningPercent}% free, critical below ${t.cacheFreeCriticalPercent}%</div>`;
        },
      },
      {
        header: "upload backlog",
        numeric: true,
        cell: (c) => {
          const p = figures(c.componentId)?.processServer;
          return p ? html`${formatBytes(p.uploadBacklogBytes)}<div class="reason">${p.uploadBacklogSeconds.toFixed(1)} s old (warning ${t.backlogWarningSeconds} s)</div>` : "–";
        },
      },
      { header: "CPU", numeric: true, cell: (c) => { const s = figures(c.componentId)?.stats; return s ? formatPercent(s.cpuPercent) : "–"; } },
      { header: "memory", numeric: true, cell: (c) => { const s = figures(c.componentId)?.stats; return s ? html`${formatBytes(s.memoryBytes)}<div class="reason">${formatPercent(s.memoryPercent)} of host</div>` : "–"; } },
      { header: "machines", cell: (c) => machines.filter((m) => m.processServerId === c.componentId).map((m) => m.name).join(", ") || "none" },
      { header: "heartbeat", cell: (c) => ago(c.lastHeartbeat, snap.nowMs) },
    ],
    servers,
    "no process servers registered",
  );
}
