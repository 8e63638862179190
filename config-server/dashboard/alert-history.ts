import { alertCodes } from "../../common/enum-names/index.js";
import { Health, type TelemetrySample } from "../../proto/index.js";

/** An alert over its life: raised at a time, cleared at a later one (or still active). */
export interface AlertEvent {
  key: string;
  source: string;
  code: string;
  level: Health;
  message: string;
  raisedAt: Date;
  clearedAt?: Date;
}

/**
 * Alerts raised and cleared within the sampler's window, newest first: the process-server
 * alerts the sampler marks (ASR's cache, backlog, CPU and memory levels) and each machine's
 * health leaving Normal. An alert is cleared at the first sample without it; a change of level
 * ends the old alert and raises a new one.
 */
export function alertHistory(samples: readonly TelemetrySample[]): AlertEvent[] {
  const open = new Map<string, AlertEvent>();
  const done: AlertEvent[] = [];
  for (const s of samples) {
    const time = s.time ?? new Date(0);
    const now = new Map<string, Omit<AlertEvent, "raisedAt">>();
    for (const a of s.alerts) {
      now.set(`${a.componentId}/${a.code}/${a.level}`, { key: `${a.componentId}/${a.code}/${a.level}`, source: a.componentName, code: alertCodes.name(a.code), level: a.level, message: a.message });
    }
    for (const m of s.machines) {
      if (m.health !== Health.HEALTH_WARNING && m.health !== Health.HEALTH_CRITICAL) continue;
      const key = `${m.machineId}/MACHINE_HEALTH/${m.health}`;
      now.set(key, { key, source: m.name, code: "MACHINE_HEALTH", level: m.health, message: `${m.name} is ${m.health === Health.HEALTH_CRITICAL ? "critical" : "warning"}` });
    }
    for (const [key, a] of open) {
      if (now.has(key)) continue;
      a.clearedAt = time;
      done.push(a);
      open.delete(key);
    }
    for (const [key, a] of now) {
      const existing = open.get(key);
      if (existing) existing.message = a.message;
      else {
        const raisedAt = s.alerts.find((x) => `${x.componentId}/${x.code}/${x.level}` === key)?.raisedAt ?? time;
        open.set(key, { ...a, raisedAt });
      }
    }
  }
  return [...done, ...open.values()].sort((a, b) => b.raisedAt.getTime() - a.raisedAt.getTime());
}
