import { AlertCode, Health, type AlertThresholds, type ComponentStats, type ProcessServerStats } from "../../proto/index.js";

/**
 * ASR's process-server alert levels: cache free space below 30 % warning / 25 % critical,
 * upload backlog older than 30 / 45 minutes, CPU or memory above 80 % / 95 %. Minutes are the
 * lab's time unit, so a rehearsal at `--time-unit 1s` raises the backlog alert after 30 s.
 */
export function asrThresholds(timeUnitSeconds: number): AlertThresholds {
  return {
    cacheFreeWarningPercent: 30,
    cacheFreeCriticalPercent: 25,
    backlogWarningSeconds: 30 * timeUnitSeconds,
    backlogCriticalSeconds: 45 * timeUnitSeconds,
    cpuWarningPercent: 80,
    cpuCriticalPercent: 95,
    memoryWarningPercent: 80,
    memoryCriticalPercent: 95,
  };
}

export interface AlertCondition {
  code: AlertCode;
  level: Health.HEALTH_WARNING | Health.HEALTH_CRITICAL;
  value: number;
  threshold: number;
  message: string;
}

/** The alerts a process server's figures raise right now (none when all are within limits). */
export function processServerAlerts(
  stats: ComponentStats | undefined,
  ps: ProcessServerStats | undefined,
  t: AlertThresholds,
): AlertCondition[] {
  const out: AlertCondition[] = [];
  const below = (code: AlertCode, what: string, value: number, warning: number, critical: number, unit: string) => {
    if (value < critical) out.push({ code, level: Health.HEALTH_CRITICAL, value, threshold: critical, message: `${what} ${value.toFixed(1)}${unit} is below ${critical}${unit}` });
    else if (value < warning) out.push({ code, level: Health.HEALTH_WARNING, value, threshold: warning, message: `${what} ${value.toFixed(1)}${unit} is below ${warning}${unit}` });
  };
  const above = (code: AlertCode, what: string, value: number, warning: number, critical: number, unit: string) => {
    if (value > critical) out.push({ code, level: Health.HEALTH_CRITICAL, value, threshold: critical, message: `${what} ${value.toFixed(1)}${unit} is above ${critical}${unit}` });
    else if (value > warning) out.push({ code, level: Health.HEALTH_WARNING, value, threshold: warning, message: `${what} ${value.toFixed(1)}${unit} is above ${warning}${unit}` });
  };
  if (ps) {
    below(AlertCode.ALERT_CODE_CACHE_FREE_SPACE, "cache free space", ps.cacheFreePercent, t.cacheFreeWarningPercent, t.cacheFreeCriticalPercent, " %");
    above(AlertCode.ALERT_CODE_UPLOAD_BACKLOG, "upload backlog", ps.uploadBacklogSeconds, t.backlogWarningSeconds, t.backlogCriticalSeconds, " s");
  }
  if (stats) {
    above(AlertCode.ALERT_CODE_CPU, "CPU", stats.cpuPercent, t.cpuWarningPercent, t.cpuCriticalPercent, " %");
    above(AlertCode.ALERT_CODE_MEMORY, "memory", stats.memoryPercent, t.memoryWarningPercent, t.memoryCriticalPercent, " %");
  }
  return out;
}
