import { CaptureMode, type Disk, Health, HealthIssueCode, type HealthIssue, type MachineReplicationReport } from "../proto/index.js";
import type { Capture } from "./capture.js";
import type { ReplicationClient } from "./replication-client.js";

/** The machine's health as ASR shows it: Critical needs an administrator, Warning heals itself. */
export function machineHealth(capture: Capture, replication: ReplicationClient | undefined): { health: Health; issues: HealthIssue[] } {
  const issues: HealthIssue[] = [];
  if (replication?.state === "halted") {
    issues.push({ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_REPLICATION_HALTED, message: replication.haltReason });
  } else if (replication?.state === "retrying") {
    issues.push({
      health: Health.HEALTH_WARNING,
      code: HealthIssueCode.HEALTH_ISSUE_CODE_PROCESS_SERVER_UNREACHABLE,
      message: `process server ${replication.processServerAddress} unreachable (${replication.failedAttempts} retries): ${replication.lastError}`,
    });
  }
  if (capture.mode === CaptureMode.CAPTURE_MODE_METADATA) {
    issues.push({
      health: Health.HEALTH_WARNING,
      code: HealthIssueCode.HEALTH_ISSUE_CODE_CAPTURE_METADATA_MODE,
      message: `${capture.queuedRecords} writes queued in metadata mode: recovery points until they are sent may hold later bytes`,
    });
  }
  if (capture.mode === CaptureMode.CAPTURE_MODE_BITMAP) {
    issues.push({ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_CAPTURE_BITMAP_MODE, message: `${capture.dirtyBlocks} dirty blocks tracked in bitmap mode` });
  }
  if (capture.resyncRequired) {
    issues.push({ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_RESYNC_REQUIRED, message: capture.resyncReason });
  }
  if (capture.writesBlockedReason) {
    issues.push({ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_WRITES_STOPPED, message: capture.writesBlockedReason });
  }
  const health = issues.reduce((worst, i) => Math.max(worst, i.health), Health.HEALTH_NORMAL) as Health;
  return { health, issues };
}

export function machineReport(
  machineId: string,
  capture: Capture,
  replication: ReplicationClient | undefined,
  disks: Disk[],
): MachineReplicationReport {
  const { health, issues } = machineHealth(capture, replication);
  return {
    machineId,
    stats: {
      rpoSeconds: capture.rpoSeconds(),
      pendingBytes: capture.pendingBytes,
      throughputBytesPerSecond: replication?.throughput() ?? 0,
      receivedSequence: capture.ackedSequence,
      // Upload and apply happen at the process server, which reports them itself.
      uploadedSequence: 0,
      processedSequence: 0,
      captureMode: capture.mode,
      bytesSent: replication?.bytesSent ?? 0,
      capturedSequence: capture.lastSequence,
      processedLagSeconds: 0,
      unprocessedBytes: 0,
      capturedBytes: capture.capturedBytes,
      receivedBytes: 0,
      uploadedBytes: 0,
      processedBytes: 0,
      dataModeSeconds: capture.secondsIn(CaptureMode.CAPTURE_MODE_DATA),
      metadataModeSeconds: capture.secondsIn(CaptureMode.CAPTURE_MODE_METADATA),
      bitmapModeSeconds: capture.secondsIn(CaptureMode.CAPTURE_MODE_BITMAP),
    },
    health,
    issues,
    resyncRequired: capture.resyncRequired,
    resyncReason: capture.resyncReason,
    disks,
  };
}
