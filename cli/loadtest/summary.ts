import { Histogram } from "./histogram.js";
import { rates, type RunSample } from "./samples.js";
import type { ThresholdMetric } from "./thresholds.js";

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  "p99.9": number;
  max: number;
  mean: number;
  count: number;
}

export function percentilesOf(h: Histogram): Percentiles {
  return { p50: h.percentile(50), p90: h.percentile(90), p95: h.percentile(95), p99: h.percentile(99), "p99.9": h.percentile(99.9), max: h.count ? h.max : 0, mean: h.mean, count: h.count };
}

export interface RateFigures {
  mean: number;
  min: number;
  max: number;
  p50: number;
  p95: number;
}

export interface RunSummary {
  loadSeconds: number;
  drainSeconds: number;
  bytes: { captured: number; uploaded: number; processed: number };
  throughput: { captured: RateFigures; uploaded: RateFigures; processed: RateFigures };
  rpoSeconds: Percentiles;
  /** NBD write completion latency from fio, in ms (null when fio did not run). */
  latencyMs: Percentiles | null;
  cache: { freeMinPercent: number | null; freeMeanPercent: number | null; usedMaxBytes: number | null };
  backlog: { maxSeconds: number | null; meanSeconds: number | null; p95Seconds: number | null };
  cpu: { maxPercent: number | null; meanPercent: number | null; p95Percent: number | null };
  memory: { maxPercent: number | null; meanPercent: number | null };
  alerts: { warning: number; critical: number; raised: Array<{ component: string; code: string; level: string; message: string; raisedAt: string }> };
  verified: boolean;
}

const during = (samples: readonly RunSample[], loadSeconds: number) => samples.filter((s) => s.t >= 0 && s.t <= loadSeconds + 0.5);

function rateFigures(values: Array<number | null>): RateFigures {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return { mean: 0, min: 0, max: 0, p50: 0, p95: 0 };
  const h = new Histogram();
  for (const x of v) h.record(x);
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v), p50: h.percentile(50), p95: h.percentile(95) };
}

function stats(values: number[]): { min: number | null; max: number | null; mean: number | null; p95: number | null } {
  if (values.length === 0) return { min: null, max: null, mean: null, p95: null };
  const h = new Histogram();
  for (const x of values) h.record(x);
  return { min: Math.min(...values), max: Math.max(...values), mean: values.reduce((a, b) => a + b, 0) / values.length, p95: h.percentile(95) };
}

/**
 * The run's figures from its samples. RPO percentiles come from a histogram of every machine's
 * RPO at every second of the load and the drain (each machine-second counts once); latency
 * percentiles from fio's completion-latency histogram.
 */
export function summarize(samples: readonly RunSample[], loadSeconds: number, latency: Histogram | undefined, verified: boolean): RunSummary {
  const load = during(samples, loadSeconds);
  const afterStart = samples.filter((s) => s.t >= 0);
  const rpo = new Histogram();
  for (const s of afterStart) for (const m of Object.values(s.machines)) rpo.record(m.rpoSeconds);
  const first = samples.find((s) => s.t >= -1.5) ?? samples[0];
  const last = samples[samples.length - 1];
  const total = (field: "capturedBytes" | "uploadedBytes" | "processedBytes") => {
    if (!first || !last) return 0;
    let n = 0;
    for (const [name, m] of Object.entries(last.machines)) n += Math.max(0, m[field] - (first.machines[name]?.[field] ?? 0));
    return n;
  };
  const ps = load.flatMap((s) => Object.values(s.processServers));
  const cacheFree = stats(ps.map((p) => p.cacheFreePercent));
  const cacheUsed = stats(ps.map((p) => p.cacheUsedBytes));
  const backlog = stats(ps.map((p) => p.backlogSeconds));
  const cpu = stats(ps.map((p) => p.cpuPercent));
  const memory = stats(ps.map((p) => p.memoryPercent));
  const raised = new Map<string, RunSummary["alerts"]["raised"][number]>();
  for (const s of afterStart) {
    for (const a of s.alerts) {
      const key = `${a.component}/${a.code}/${a.level}/${a.raisedAt}`;
      if (!raised.has(key)) raised.set(key, { component: a.component, code: a.code, level: a.level, message: a.message, raisedAt: a.raisedAt });
    }
  }
  const list = [...raised.values()];
  return {
    loadSeconds,
    drainSeconds: last ? Math.max(0, last.t - loadSeconds) : 0,
    bytes: { captured: total("capturedBytes"), uploaded: total("uploadedBytes"), processed: total("processedBytes") },
    throughput: {
      captured: rateFigures(rates(load, "capturedBytes")),
      uploaded: rateFigures(rates(load, "uploadedBytes")),
      processed: rateFigures(rates(load, "processedBytes")),
    },
    rpoSeconds: percentilesOf(rpo),
    latencyMs: latency && latency.count > 0 ? percentilesOf(latency) : null,
    cache: { freeMinPercent: cacheFree.min, freeMeanPercent: cacheFree.mean, usedMaxBytes: cacheUsed.max },
    backlog: { maxSeconds: backlog.max, meanSeconds: backlog.mean, p95Seconds: backlog.p95 },
    cpu: { maxPercent: cpu.max, meanPercent: cpu.mean, p95Percent: cpu.p95 },
    memory: { maxPercent: memory.max, meanPercent: memory.mean },
    alerts: { warning: list.filter((a) => a.level === "warning").length, critical: list.filter((a) => a.level === "critical").length, raised: list },
    verified,
  };
}

/** The figure a threshold names, or undefined when the run has none. */
export function figureOf(s: RunSummary, metric: ThresholdMetric, aggregate: string): number | undefined {
  const pick = (o: Record<string, number | null> | null, key: string) => (o && o[key] !== null && o[key] !== undefined ? o[key]! : undefined);
  switch (metric) {
    case "rpo":
      return s.rpoSeconds.count ? pick(s.rpoSeconds as unknown as Record<string, number>, aggregate) : undefined;
    case "latency":
      return pick(s.latencyMs as unknown as Record<string, number> | null, aggregate);
    case "throughput":
      return pick(s.throughput.captured as unknown as Record<string, number>, aggregate);
    case "uploaded":
      return pick(s.throughput.uploaded as unknown as Record<string, number>, aggregate);
    case "processed":
      return pick(s.throughput.processed as unknown as Record<string, number>, aggregate);
    case "cache.free":
      return pick({ min: s.cache.freeMinPercent, mean: s.cache.freeMeanPercent, max: null }, aggregate);
    case "cache.used":
      return pick({ max: s.cache.usedMaxBytes, mean: null }, aggregate);
    case "backlog":
      return pick({ max: s.backlog.maxSeconds, mean: s.backlog.meanSeconds, p95: s.backlog.p95Seconds }, aggregate);
    case "cpu":
      return pick({ max: s.cpu.maxPercent, mean: s.cpu.meanPercent, p95: s.cpu.p95Percent }, aggregate);
    case "memory":
      return pick({ max: s.memory.maxPercent, mean: s.memory.meanPercent }, aggregate);
    case "alerts.critical":
      return s.alerts.critical;
    case "alerts.warning":
      return s.alerts.warning;
    case "verified":
      return s.verified ? 1 : 0;
  }
}
