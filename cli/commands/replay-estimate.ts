import type { TelemetrySample } from "../../proto/index.js";
import { formatBytes } from "../output.js";

/** How far back the apply rate is measured. */
const RATE_WINDOW_MS = 60_000;

/** What a failover to `latest` must apply to the replica before it can start the machine. */
export interface ReplayEstimate {
  /** Uploaded but not yet applied to the replica. */
  unprocessedBytes: number;
  /** Age of the oldest write not yet applied. */
  processedLagSeconds: number;
  /** The process server's apply rate over the last minute of telemetry; null when nothing was applied. */
  applyBytesPerSecond: number | null;
  /** unprocessedBytes at that rate; null when there is a backlog and no rate to divide by. */
  seconds: number | null;
}

/**
 * The machine's apply rate from the configuration server's samples: bytes applied per second
 * over the last minute, counted only since the process server last restarted (its counter
 * starts again from 0 then).
 */
export function applyRate(samples: readonly TelemetrySample[], machineId: string, nowMs = Date.now()): number | null {
  const points: { t: number; bytes: number }[] = [];
  for (const s of samples) {
    const t = s.time?.getTime();
    const m = s.machines.find((x) => x.machineId === machineId);
    if (t === undefined || !m || t < nowMs - RATE_WINDOW_MS) continue;
    // A counter that went down is a restarted process server: measure from there on.
    if (points.length && m.processedBytes < points[points.length - 1]!.bytes) points.length = 0;
    points.push({ t, bytes: m.processedBytes });
  }
  if (points.length < 2) return null;
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const applied = last.bytes - first.bytes;
  return applied > 0 && last.t > first.t ? (applied * 1000) / (last.t - first.t) : null;
}

export function replayEstimate(unprocessedBytes: number, processedLagSeconds: number, applyBytesPerSecond: number | null): ReplayEstimate {
  const seconds = unprocessedBytes === 0 ? 0 : applyBytesPerSecond ? unprocessedBytes / applyBytesPerSecond : null;
  return { unprocessedBytes, processedLagSeconds, applyBytesPerSecond, seconds };
}

/** One line for the operator before the failover starts. */
export function describeReplay(e: ReplayEstimate): string {
  if (e.unprocessedBytes === 0) return "replay: none — the replica has applied everything uploaded";
  const backlog = `${formatBytes(e.unprocessedBytes)} uploaded but not yet applied (oldest ${e.processedLagSeconds.toFixed(1)} s old)`;
  if (e.seconds === null) return `replay: ${backlog}; no apply measured in the last minute, so no estimate of how long it takes`;
  return `replay: ${backlog}; about ${Math.max(1, Math.round(e.seconds))} s at the last minute's apply rate of ${formatBytes(e.applyBytesPerSecond!)}/s`;
}
