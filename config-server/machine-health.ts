import {
  Health,
  type HealthIssue,
  HealthIssueCode,
  type Machine,
  type MachineReplicationReport,
  ReplicationDirection,
  type ReplicationPolicy,
  type ReplicationStats,
  ReplicationState,
} from "../proto/index.js";

/** Latest reports about one machine: from its agent and from its process server. */
export interface MachineReports {
  agent?: { report: MachineReplicationReport; at: number };
  /** The agent of the machine while it runs in Azure. */
  azureAgent?: { report: MachineReplicationReport; at: number };
  processServer?: { report: MachineReplicationReport; at: number };
}

/**
 * One view of a machine's replication from both ends: RPO is the age of the oldest write not
 * yet in storage, wherever it waits (agent queue or process server cache).
 */
export function mergeStats(reports: MachineReports, direction: ReplicationDirection): ReplicationStats {
  const a = sourceAgent(reports, direction)?.report.stats;
  const p = reports.processServer?.report.stats;
  return {
    rpoSeconds: Math.max(a?.rpoSeconds ?? 0, p?.rpoSeconds ?? 0),
    pendingBytes: (a?.pendingBytes ?? 0) + (p?.pendingBytes ?? 0),
    throughputBytesPerSecond: p?.throughputBytesPerSecond || a?.throughputBytesPerSecond || 0,
    receivedSequence: p?.receivedSequence ?? 0,
    uploadedSequence: p?.uploadedSequence ?? 0,
    processedSequence: p?.processedSequence ?? 0,
    captureMode: a?.captureMode ?? 0,
    bytesSent: a?.bytesSent ?? 0,
    capturedSequence: a?.capturedSequence ?? 0,
    processedLagSeconds: p?.processedLagSeconds ?? 0,
    unprocessedBytes: p?.unprocessedBytes ?? 0,
    capturedBytes: a?.capturedBytes ?? 0,
    receivedBytes: p?.receivedBytes ?? 0,
    uploadedBytes: p?.uploadedBytes ?? 0,
    processedBytes: p?.processedBytes ?? 0,
    dataModeSeconds: a?.dataModeSeconds ?? 0,
    metadataModeSeconds: a?.metadataModeSeconds ?? 0,
    bitmapModeSeconds: a?.bitmapModeSeconds ?? 0,
  };
}

/** The agent whose writes are being replicated: on-premises, or in Azure during failback. */
function sourceAgent(reports: MachineReports, direction: ReplicationDirection): MachineReports["agent"] {
  return direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES ? reports.azureAgent : reports.agent;
}

const REPLICATING = new Set([
  ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION,
  ReplicationState.REPLICATION_STATE_FINALIZING_PROTECTION,
  ReplicationState.REPLICATION_STATE_PROTECTED,
  ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
  ReplicationState.REPLICATION_STATE_RESYNCING,
]);

/** Health of a machine with the reasons, from its reports, its policy and heartbeat ages. */
export function machineHealth(
  machine: Machine,
  reports: MachineReports,
  policy: ReplicationPolicy | undefined,
  now: number,
  heartbeatTimeoutMs: number,
): { health: Health; issues: HealthIssue[] } {
  const issues: HealthIssue[] = [];
  const agent = sourceAgent(reports, machine.direction);
  for (const r of [agent, reports.processServer]) if (r) issues.push(...r.report.issues);
  const awayOnPurpose =
    machine.state === ReplicationState.REPLICATION_STATE_FAILED_OVER || machine.state === ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED;
  if (!awayOnPurpose && (!agent || now - agent.at > heartbeatTimeoutMs)) {
    issues.push({ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_AGENT_UNREACHABLE, message: "no heartbeat from the mobility agent" });
  }
  if (REPLICATING.has(machine.state)) {
    if (machine.processServerId && (!reports.processServer || now - reports.processServer.at > heartbeatTimeoutMs)) {
      issues.push({ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_PROCESS_SERVER_UNREACHABLE, message: "no report from the process server" });
    }
    const stats = mergeStats(reports, machine.direction);
    const rpo = stats.rpoSeconds;
    if (policy && rpo > policy.rpoThresholdSeconds) {
      issues.push({
        health: Health.HEALTH_WARNING,
        code: HealthIssueCode.HEALTH_ISSUE_CODE_RPO_THRESHOLD_EXCEEDED,
        message: `RPO ${rpo.toFixed(1)} s exceeds the policy's threshold of ${policy.rpoThresholdSeconds} s`,
      });
    }
    // Safe in storage but not on the replica: `latest-processed` falls behind and `latest` must replay first.
    if (policy && stats.processedLagSeconds > policy.rpoThresholdSeconds) {
      issues.push({
        health: Health.HEALTH_WARNING,
        code: HealthIssueCode.HEALTH_ISSUE_CODE_PROCESSED_LAG_EXCEEDED,
        message:
          `processed lag ${stats.processedLagSeconds.toFixed(1)} s exceeds the policy's RPO threshold of ${policy.rpoThresholdSeconds} s: ` +
          `the process server has ${formatMiB(stats.unprocessedBytes)} uploaded but not yet applied to the replica`,
      });
    }
    if (agent?.report.resyncRequired) {
      issues.push({ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_RESYNC_REQUIRED, message: `resync required: ${agent.report.resyncReason}` });
    }
  }
  const health = issues.reduce((worst, i) => Math.max(worst, i.health), Health.HEALTH_NORMAL) as Health;
  return { health, issues };
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
