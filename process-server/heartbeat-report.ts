import { Health, type HealthIssue, type MachineReplicationReport, type ProcessServerStats, type ReplicationStats } from "../proto/index.js";
import type { CacheHealth, DiskCache } from "./cache/index.js";
import { type Machine, worstHealth } from "./machine.js";
import type { ProcessServerMetrics } from "./metrics.js";

/** What the heartbeat report reads from the process server. */
export interface ReportHost {
  readonly cache: DiskCache | undefined;
  readonly cacheHealth: CacheHealth;
  readonly metrics: ProcessServerMetrics;
  /** Every machine with a running pipeline. */
  machines(): Iterable<Machine>;
  /** Bytes appended and not yet uploaded (the uploader's estimate). */
  pendingBytes(machine: Machine): number;
  /** What the storage watch reports while storage is unreachable. */
  storageIssues(): HealthIssue[];
}

export interface HeartbeatReport {
  health: Health;
  issues: HealthIssue[];
  machines: MachineReplicationReport[];
  processServerStats?: ProcessServerStats;
}

/** One machine's replication figures, as heartbeats, DrainMachine and status report them. */
export function machineStats(cache: DiskCache, machine: Machine, pendingBytes: number): ReplicationStats {
  const oldest = cache.oldestPendingCapturedAtMs(machine.id);
  const received = cache.lastSequence(machine.id);
  const rpoSeconds = received > machine.uploaded.value && oldest !== undefined ? Math.max(0, (Date.now() - oldest) / 1000) : 0;
  const lag = machine.processedLag.measure(machine.processed.value, machine.uploaded.value);
  return {
    processedLagSeconds: lag.lagSeconds,
    unprocessedBytes: lag.unprocessedBytes,
    rpoSeconds,
    pendingBytes,
    throughputBytesPerSecond: machine.receivedRate.perSecond(),
    receivedSequence: received,
    uploadedSequence: machine.uploaded.value,
    processedSequence: machine.processed.value,
    captureMode: 0,
    bytesSent: machine.receivedBytesTotal,
    capturedSequence: 0,
    capturedBytes: 0,
    receivedBytes: machine.receivedBytesTotal,
    uploadedBytes: machine.uploadedBytesTotal,
    processedBytes: machine.processedBytesTotal,
    dataModeSeconds: 0,
    metadataModeSeconds: 0,
    bitmapModeSeconds: 0,
  };
}

/** Heartbeat content: the cache's health and one report per machine. */
export function heartbeatReport(host: ReportHost): HeartbeatReport {
  const { cache, cacheHealth, metrics } = host;
  const machines: MachineReplicationReport[] = [];
  let backlogBytes = 0;
  let backlogSeconds = 0;
  if (cache) {
    for (const machine of host.machines()) {
      const stats = machineStats(cache, machine, host.pendingBytes(machine));
      // The process server's RPO of a machine is the age of its oldest write not yet uploaded.
      backlogBytes += stats.pendingBytes;
      backlogSeconds = Math.max(backlogSeconds, stats.rpoSeconds);
      // RPO against the policy's threshold is judged by the CS, which also sees the agent's queue.
      const issues = machine.currentIssues();
      metrics.rpoSeconds.set({ machine_id: machine.id }, stats.rpoSeconds);
      metrics.processedLagSeconds.set({ machine_id: machine.id }, stats.processedLagSeconds);
      metrics.unprocessedBytes.set({ machine_id: machine.id }, stats.unprocessedBytes);
      machines.push({
        machineId: machine.id,
        stats,
        health: worstHealth(issues),
        issues,
        resyncRequired: machine.resyncReason !== undefined,
        resyncReason: machine.resyncReason ?? "",
        disks: machine.diskList().map((d) => ({
          diskId: "",
          index: d.index,
          sizeBytes: d.sizeBytes,
          imagePath: "",
          nbdUri: "",
          nbdUnixUri: "",
          addedAtSequence: d.addedAtSequence,
          blobName: "",
        })),
      });
    }
    metrics.cacheBytes.set(cache.usedBytes());
  }
  const processServerStats: ProcessServerStats = {
    cacheUsedBytes: cache?.usedBytes() ?? 0,
    cacheCapacityBytes: cacheHealth.capacityBytes,
    cacheFreePercent: cacheHealth.freePercent,
    uploadBacklogBytes: backlogBytes,
    uploadBacklogSeconds: backlogSeconds,
  };
  const issues = [...cacheHealth.issues, ...host.storageIssues()];
  const health = worstHealth(issues);
  metrics.cacheCapacityBytes.set(processServerStats.cacheCapacityBytes);
  metrics.cacheFreeRatio.set(processServerStats.cacheFreePercent / 100);
  metrics.uploadBacklogBytes.set(backlogBytes);
  metrics.uploadBacklogSeconds.set(backlogSeconds);
  metrics.healthSeverity.set(health === Health.HEALTH_CRITICAL ? 2 : health === Health.HEALTH_WARNING ? 1 : 0);
  return { health, issues, machines, processServerStats };
}
