import { type Component, Health, HealthIssueCode, type Machine, type RecoveryPoint, type ReplicationPolicy } from "../../proto/index.js";
import { machineHealth, mergeStats } from "../machine-health.js";
import type { ConfigHost } from "./host.js";

/**
 * A machine as the admin sees it: stored state plus health and stats from the latest reports.
 * `known` carries its policy and newest point when the caller read them for all machines at once.
 */
export function machineView(
  host: ConfigHost,
  m: Machine,
  known?: { policy: ReplicationPolicy | undefined; lastPoint: RecoveryPoint | undefined },
): Machine {
  const reports = host.reports.get(m.machineId) ?? {};
  const policy = known ? known.policy : m.policyName ? host.store.getPolicy(m.policyName) : undefined;
  const { health, issues } = machineHealth(m, reports, policy, Date.now(), host.options.heartbeatTimeoutSeconds * 1000);
  const lastRecoveryPoint = known ? known.lastPoint : host.store.listRecoveryPoints(m.machineId).at(-1);
  return { ...m, health, issues, stats: mergeStats(reports, m.direction), lastRecoveryPoint, nextResync: host.resyncs?.nextResync(m) };
}

/** Every machine's view from one read of the store (a fixed number of queries, not some per machine). */
export function machineViews(host: ConfigHost): Machine[] {
  const { machines, latestPoints, policies } = host.store.machineOverview();
  return machines.map((m) =>
    machineView(host, m, { policy: m.policyName ? policies.get(m.policyName) : undefined, lastPoint: latestPoints.get(m.machineId) }),
  );
}

/** A component as the admin sees it: Critical once its heartbeats stopped. */
export function componentView(host: ConfigHost, c: Component): Component {
  const age = c.lastHeartbeat ? Date.now() - c.lastHeartbeat.getTime() : Number.POSITIVE_INFINITY;
  if (age <= host.options.heartbeatTimeoutSeconds * 1000) return c;
  const seconds = Number.isFinite(age) ? `${Math.round(age / 1000)} s` : "ever";
  return {
    ...c,
    health: Health.HEALTH_CRITICAL,
    issues: [...c.issues, { health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_NO_HEARTBEAT, message: `no heartbeat for ${seconds}` }],
  };
}

