import { alertCodes } from "../../common/enum-names/index.js";
import { ComponentRole, type TelemetrySample } from "../../proto/index.js";

/** One second of the run as report.json keeps it (names, not ids; figures in base units). */
export interface RunSample {
  /** Seconds since the load started (negative before, beyond the load during the drain). */
  t: number;
  time: string;
  machines: Record<string, { rpoSeconds: number; pendingBytes: number; capturedBytes: number; receivedBytes: number; uploadedBytes: number; processedBytes: number; captureMode: number }>;
  processServers: Record<string, { cacheUsedBytes: number; cacheFreePercent: number; backlogSeconds: number; backlogBytes: number; cpuPercent: number; memoryBytes: number; memoryPercent: number; health: number }>;
  daemons: Record<string, { role: string; cpuPercent: number; memoryBytes: number }>;
  alerts: Array<{ component: string; code: string; level: "warning" | "critical"; value: number; threshold: number; message: string; raisedAt: string }>;
}

const ROLE: Record<number, string> = {
  [ComponentRole.COMPONENT_ROLE_CONFIGURATION_SERVER]: "config-server",
  [ComponentRole.COMPONENT_ROLE_PROCESS_SERVER]: "process-server",
  [ComponentRole.COMPONENT_ROLE_MASTER_TARGET]: "master-target",
  [ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT]: "agent",
};

/** Converts a telemetry sample, keeping only the machines of the test. */
export function toRunSample(s: TelemetrySample, startMs: number, machines: ReadonlySet<string>): RunSample {
  const time = s.time ?? new Date();
  const out: RunSample = { t: (time.getTime() - startMs) / 1000, time: time.toISOString(), machines: {}, processServers: {}, daemons: {}, alerts: [] };
  for (const m of s.machines) {
    if (!machines.has(m.name)) continue;
    out.machines[m.name] = {
      rpoSeconds: m.rpoSeconds,
      pendingBytes: m.pendingBytes,
      capturedBytes: m.capturedBytes,
      receivedBytes: m.receivedBytes,
      uploadedBytes: m.uploadedBytes,
      processedBytes: m.processedBytes,
      captureMode: m.captureMode,
    };
  }
  for (const c of s.components) {
    if (c.stats) out.daemons[c.name] = { role: ROLE[c.role] ?? "unknown", cpuPercent: c.stats.cpuPercent, memoryBytes: c.stats.memoryBytes };
    if (c.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER && c.processServer) {
      out.processServers[c.name] = {
        cacheUsedBytes: c.processServer.cacheUsedBytes,
        cacheFreePercent: c.processServer.cacheFreePercent,
        backlogSeconds: c.processServer.uploadBacklogSeconds,
        backlogBytes: c.processServer.uploadBacklogBytes,
        cpuPercent: c.stats?.cpuPercent ?? 0,
        memoryBytes: c.stats?.memoryBytes ?? 0,
        memoryPercent: c.stats?.memoryPercent ?? 0,
        health: c.health,
      };
    }
  }
  out.alerts = s.alerts.map((a) => ({
    component: a.componentName,
    code: alertCodes.name(a.code),
    level: a.level >= 3 ? "critical" : "warning",
    value: a.value,
    threshold: a.threshold,
    message: a.message,
    raisedAt: (a.raisedAt ?? time).toISOString(),
  }));
  return out;
}

/** Per-second rates from cumulative byte counters (a daemon restart resets a counter: no negative rates). */
export function rates(samples: readonly RunSample[], field: "capturedBytes" | "uploadedBytes" | "processedBytes", machine?: string): Array<number | null> {
  return samples.map((s, i) => {
    if (i === 0) return null;
    const prev = samples[i - 1]!;
    const dt = s.t - prev.t;
    if (dt <= 0) return null;
    let bytes = 0;
    for (const [name, m] of Object.entries(s.machines)) {
      if (machine && name !== machine) continue;
      const before = prev.machines[name]?.[field];
      if (before === undefined) continue;
      bytes += Math.max(0, m[field] - before);
    }
    return bytes / dt;
  });
}
