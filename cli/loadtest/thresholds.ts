import { parseDuration, parseRate, parseSize } from "../../common/units/index.js";

/**
 * Pass/fail criteria like k6's: `METRIC[.AGGREGATE] OP VALUE`, e.g. `rpo.p99<1s`,
 * `cache.free.min>30%`, `throughput.mean>20MB/s`, `alerts.critical==0`.
 */
export const THRESHOLD_METRICS = {
  rpo: { unit: "s", aggregates: ["p50", "p90", "p95", "p99", "p99.9", "max", "mean"], help: "RPO of every machine, every second" },
  latency: { unit: "ms", aggregates: ["p50", "p90", "p95", "p99", "p99.9", "max", "mean"], help: "NBD write completion latency (fio)" },
  throughput: { unit: "B/s", aggregates: ["mean", "min", "max", "p50", "p95"], help: "captured MB/s over all machines, per second" },
  uploaded: { unit: "B/s", aggregates: ["mean", "min", "max", "p50", "p95"], help: "uploaded MB/s over all machines, per second" },
  processed: { unit: "B/s", aggregates: ["mean", "min", "max", "p50", "p95"], help: "processed MB/s over all machines, per second" },
  "cache.free": { unit: "%", aggregates: ["min", "mean", "max"], help: "process-server cache free %" },
  "cache.used": { unit: "B", aggregates: ["max", "mean"], help: "process-server cache bytes used" },
  backlog: { unit: "s", aggregates: ["max", "mean", "p95"], help: "upload backlog age" },
  cpu: { unit: "%", aggregates: ["max", "mean", "p95"], help: "process-server CPU %" },
  memory: { unit: "%", aggregates: ["max", "mean"], help: "process-server memory %" },
  "alerts.critical": { unit: "count", aggregates: [], help: "critical process-server alerts raised" },
  "alerts.warning": { unit: "count", aggregates: [], help: "warning process-server alerts raised" },
  verified: { unit: "count", aggregates: [], help: "1 when every replica equals its source" },
} as const;

export type ThresholdMetric = keyof typeof THRESHOLD_METRICS;
export type Op = "<" | "<=" | ">" | ">=" | "==" | "!=";

export interface Threshold {
  /** As the user wrote it. */
  expression: string;
  metric: ThresholdMetric;
  aggregate: string;
  op: Op;
  /** In the metric's base unit: seconds, milliseconds, bytes per second, bytes, percent, count. */
  value: number;
}

const EXPR = /^\s*([a-z.]+?)(?:\.(p\d+(?:\.\d+)?|min|max|mean))?\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$/;

/** Parses one threshold; throws a one-line error naming what is wrong. */
export function parseThreshold(expression: string): Threshold {
  const m = EXPR.exec(expression);
  if (!m) throw new RangeError(`malformed threshold "${expression}" (expected METRIC[.AGG] OP VALUE, e.g. 'rpo.p99<1s')`);
  const metric = m[1] as ThresholdMetric;
  const def = THRESHOLD_METRICS[metric];
  if (!def) throw new RangeError(`threshold "${expression}": unknown metric "${m[1]}" (one of ${Object.keys(THRESHOLD_METRICS).join(", ")})`);
  const aggregates: readonly string[] = def.aggregates;
  const aggregate = m[2] ?? (aggregates.length ? "" : "value");
  if (aggregates.length === 0 && m[2]) throw new RangeError(`threshold "${expression}": ${metric} takes no aggregate`);
  if (aggregates.length > 0 && !aggregates.includes(aggregate)) {
    throw new RangeError(`threshold "${expression}": ${metric} needs one of .${aggregates.join(", .")}`);
  }
  return { expression: expression.trim(), metric, aggregate, op: m[3] as Op, value: parseValue(expression, m[4]!, def.unit) };
}

function parseValue(expression: string, text: string, unit: string): number {
  const bad = (why: string) => new RangeError(`threshold "${expression}": ${why}`);
  try {
    switch (unit) {
      case "s":
        return /^\d+(\.\d+)?$/.test(text) ? Number(text) : parseDuration(text) / 1000;
      case "ms":
        return /^\d+(\.\d+)?$/.test(text) ? Number(text) : parseDuration(text);
      case "%": {
        const v = Number(text.replace(/%$/, ""));
        if (!Number.isFinite(v) || v < 0 || v > 100) throw bad(`"${text}" is not a percentage`);
        return v;
      }
      case "B/s":
        return parseRate(text);
      case "B":
        return parseSize(text);
      default: {
        const v = Number(text);
        if (!Number.isFinite(v)) throw bad(`"${text}" is not a number`);
        return v;
      }
    }
  } catch (err) {
    if (err instanceof RangeError && err.message.startsWith("threshold")) throw err;
    throw bad(`invalid value "${text}" (${(err as Error).message})`);
  }
}

export function holds(op: Op, actual: number, limit: number): boolean {
  switch (op) {
    case "<":
      return actual < limit;
    case "<=":
      return actual <= limit;
    case ">":
      return actual > limit;
    case ">=":
      return actual >= limit;
    case "==":
      return actual === limit;
    case "!=":
      return actual !== limit;
  }
}

export interface ThresholdVerdict {
  expression: string;
  actual: number | null;
  passed: boolean;
  /** Why there is no figure (no samples of this metric in the run). */
  note?: string;
}

/** Judges each threshold against the run's figures (`metric.aggregate` → value). */
export function judge(thresholds: readonly Threshold[], figure: (metric: ThresholdMetric, aggregate: string) => number | undefined): ThresholdVerdict[] {
  return thresholds.map((t) => {
    const actual = figure(t.metric, t.aggregate);
    if (actual === undefined) return { expression: t.expression, actual: null, passed: false, note: `no ${t.metric} figures in this run` };
    return { expression: t.expression, actual, passed: holds(t.op, actual, t.value) };
  });
}
