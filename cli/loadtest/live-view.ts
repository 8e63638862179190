import { formatBytes, formatRate } from "../../common/html/index.js";
import { Histogram } from "./histogram.js";
import type { RunSample } from "./samples.js";

export interface LiveFigures {
  elapsedSeconds: number;
  /** Undefined when the length is not known (a fio job file). */
  totalSeconds?: number;
  phase: string;
  captured: number;
  uploaded: number;
  processed: number;
  rpoP50: number;
  rpoMax: number;
  cacheUsedBytes: number;
  cacheFreePercent: number | null;
  backlogSeconds: number;
  alerts: string[];
}

/** The live figures from the two newest samples (rates are their difference). */
export function liveFigures(prev: RunSample | undefined, cur: RunSample, phase: string, elapsedSeconds: number, totalSeconds?: number): LiveFigures {
  const dt = prev ? cur.t - prev.t : 0;
  const rate = (f: "capturedBytes" | "uploadedBytes" | "processedBytes") => {
    if (!prev || dt <= 0) return 0;
    let n = 0;
    for (const [name, m] of Object.entries(cur.machines)) n += Math.max(0, m[f] - (prev.machines[name]?.[f] ?? m[f]));
    return n / dt;
  };
  const rpo = new Histogram();
  for (const m of Object.values(cur.machines)) rpo.record(m.rpoSeconds);
  const ps = Object.values(cur.processServers);
  return {
    elapsedSeconds,
    totalSeconds,
    phase,
    captured: rate("capturedBytes"),
    uploaded: rate("uploadedBytes"),
    processed: rate("processedBytes"),
    rpoP50: rpo.percentile(50),
    rpoMax: rpo.count ? rpo.max : 0,
    cacheUsedBytes: ps.reduce((n, p) => n + p.cacheUsedBytes, 0),
    cacheFreePercent: ps.length ? Math.min(...ps.map((p) => p.cacheFreePercent)) : null,
    backlogSeconds: ps.length ? Math.max(...ps.map((p) => p.backlogSeconds)) : 0,
    alerts: cur.alerts.map((a) => `${a.component} ${a.code.toLowerCase()} ${a.level}`),
  };
}

const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

/** Three lines for a terminal, redrawn in place. */
export function ttyLines(f: LiveFigures, width = 30): string[] {
  const done = f.totalSeconds ? Math.min(1, f.elapsedSeconds / f.totalSeconds) : 0;
  const filled = Math.round(done * width);
  const bar = f.totalSeconds ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ` : "";
  const remaining = f.totalSeconds ? ` / ${clock(f.totalSeconds)} (${clock(Math.max(0, f.totalSeconds - f.elapsedSeconds))} left)` : "";
  return [
    `${f.phase} ${bar}${clock(f.elapsedSeconds)}${remaining}`,
    `  captured ${formatRate(f.captured)}  uploaded ${formatRate(f.uploaded)}  processed ${formatRate(f.processed)}  RPO p50 ${f.rpoP50.toFixed(2)} s, max ${f.rpoMax.toFixed(2)} s`,
    `  cache ${formatBytes(f.cacheUsedBytes)} used${f.cacheFreePercent === null ? "" : ` (${f.cacheFreePercent.toFixed(1)}% free)`}  backlog ${f.backlogSeconds.toFixed(1)} s  alerts: ${f.alerts.length ? f.alerts.join(", ") : "none"}`,
  ];
}

/** One key=value line per second when the output is not a terminal (logs, CI). */
export function plainLine(f: LiveFigures): string {
  const mb = (v: number) => (v / 1e6).toFixed(2);
  return [
    `loadtest phase=${f.phase}`,
    `t=${f.elapsedSeconds.toFixed(0)}s${f.totalSeconds ? `/${f.totalSeconds.toFixed(0)}s` : ""}`,
    `captured=${mb(f.captured)}MB/s`,
    `uploaded=${mb(f.uploaded)}MB/s`,
    `processed=${mb(f.processed)}MB/s`,
    `rpo.p50=${f.rpoP50.toFixed(2)}s`,
    `rpo.max=${f.rpoMax.toFixed(2)}s`,
    `cache.used=${f.cacheUsedBytes}B`,
    `cache.free=${f.cacheFreePercent === null ? "-" : `${f.cacheFreePercent.toFixed(1)}%`}`,
    `backlog=${f.backlogSeconds.toFixed(1)}s`,
    `alerts=${f.alerts.length}`,
  ].join(" ");
}

/** Draws the live view on stderr: in place on a terminal, one line per update otherwise. */
export class LiveView {
  private drawn = 0;
  constructor(private readonly tty = Boolean(process.stderr.isTTY)) {}

  update(f: LiveFigures): void {
    if (!this.tty) {
      process.stderr.write(`${plainLine(f)}\n`);
      return;
    }
    const lines = ttyLines(f);
    const up = this.drawn ? `\x1b[${this.drawn}F` : "";
    process.stderr.write(`${up}${lines.map((l) => `\x1b[2K${l}`).join("\n")}\n`);
    this.drawn = lines.length;
  }

  /** A line of its own (a phase ending) that the next update will not overwrite. */
  note(line: string): void {
    process.stderr.write(`${line}\n`);
    this.drawn = 0;
  }
}
