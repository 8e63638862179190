import { type Component, Health, type Machine } from "../../proto/index.js";
import { machineHealth, mergeStats } from "../machine-health.js";
import type { ConfigHost } from "./host.js";

/** A machine as the admin sees it: stored state plus health and stats from the latest reports. */
export function machineView(host: ConfigHost, m: Machine): Machine {
  const reports = host.reports.get(m.machineId) ?? {};
  const policy = m.policyName ? host.store.getPolicy(m.policyName) : undefined;
  const { health, issues } = machineHealth(m, reports, policy, Date.now(), host.options.heartbeatTimeoutSeconds * 1000);
  const points = host.store.listRecoveryPoints(m.machineId);
  return {
    ...m,
    health,
    issues,
    stats: mergeStats(reports, m.direction),
    lastRecoveryPoint: points[points.length - 1],
    nextResync: host.resyncs?.nextResync(m),
  };
}

/** A component as the admin sees it: Critical once its heartbeats stopped. */
export function componentView(host: ConfigHost, c: Component): Component {
  const age = c.lastHeartbeat ? Date.now() - c.lastHeartbeat.getTime() : Number.POSITIVE_INFINITY;
  if (age <= host.options.heartbeatTimeoutSeconds * 1000) return c;
  const seconds = Number.isFinite(age) ? `${Math.round(age / 1000)} s` : "ever";
  return {
    ...c,
    health: Health.HEALTH_CRITICAL,
    issues: [...c.issues, { health: Health.HEALTH_CRITICAL, code: "NO_HEARTBEAT", message: `no heartbeat for ${seconds}` }],
  };
}

