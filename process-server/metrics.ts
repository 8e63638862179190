import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "../common/metrics/index.js";

/** The process server's Prometheus series; per-machine series carry `machine_id` (the configuration
 * server's srlab_cs_machine_info maps it to the machine's name). */
export class ProcessServerMetrics {
  readonly receivedBytes: Counter<"machine_id">;
  readonly receivedRecords: Counter<"machine_id">;
  readonly acks: Counter<"machine_id">;
  readonly rejectedBatches: Counter<"machine_id" | "code">;
  readonly cacheBytes: Gauge;
  readonly uploadedSegments: Counter<"machine_id">;
  readonly uploadedBytes: Counter<"machine_id">;
  readonly uploadFailures: Counter<"machine_id">;
  readonly uploadSeconds: Histogram;
  readonly appliedRecords: Counter<"machine_id">;
  readonly recoveryPoints: Counter<"machine_id" | "type">;
  readonly rpoSeconds: Gauge<"machine_id">;
  readonly processedLagSeconds: Gauge<"machine_id">;
  readonly unprocessedBytes: Gauge<"machine_id">;
  readonly applyRequests: Counter<"machine_id" | "kind">;
  readonly masterTargetReconnects: Counter<"machine_id">;
  readonly cacheCapacityBytes: Gauge;
  readonly cacheFreeRatio: Gauge;
  readonly uploadBacklogBytes: Gauge;
  readonly uploadBacklogSeconds: Gauge;
  readonly healthSeverity: Gauge;
  readonly applyBlockCacheBytes: Gauge;
  /** What applyBlockCacheBytes reports when scraped (the server's replica block cache). */
  applyBlockCacheSource: () => number = () => 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.receivedBytes = new Counter({
      name: "srlab_ps_received_bytes_total",
      help: "Payload bytes received from agents and made durable in the cache",
      labelNames: ["machine_id"],
      registers,
    });
    this.receivedRecords = new Counter({
      name: "srlab_ps_received_records_total",
      help: "Write records received from agents and made durable in the cache",
      labelNames: ["machine_id"],
      registers,
    });
    this.acks = new Counter({ name: "srlab_ps_acks_total", help: "Acks sent to agents", labelNames: ["machine_id"], registers });
    this.rejectedBatches = new Counter({
      name: "srlab_ps_rejected_batches_total",
      help: "Batches refused (bad input, sequence gap)",
      labelNames: ["machine_id", "code"],
      registers,
    });
    this.cacheBytes = new Gauge({ name: "srlab_ps_cache_bytes", help: "Bytes held in the disk cache", registers });
    this.uploadedSegments = new Counter({
      name: "srlab_ps_uploaded_segments_total",
      help: "Log segments uploaded to storage",
      labelNames: ["machine_id"],
      registers,
    });
    this.uploadedBytes = new Counter({
      name: "srlab_ps_uploaded_bytes_total",
      help: "Encoded (compressed, encrypted) segment bytes uploaded",
      labelNames: ["machine_id"],
      registers,
    });
    this.uploadFailures = new Counter({
      name: "srlab_ps_upload_failures_total",
      help: "Failed segment upload attempts",
      labelNames: ["machine_id"],
      registers,
    });
    this.uploadSeconds = new Histogram({
      name: "srlab_ps_segment_upload_duration_seconds",
      help: "Time to encode and upload one segment",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.appliedRecords = new Counter({
      name: "srlab_ps_applied_records_total",
      help: "Records applied to replica page blobs, or acknowledged by the master target (failback)",
      labelNames: ["machine_id"],
      registers,
    });
    this.recoveryPoints = new Counter({
      name: "srlab_ps_recovery_points_total",
      help: "Recovery points created",
      labelNames: ["machine_id", "type"],
      registers,
    });
    this.rpoSeconds = new Gauge({
      name: "srlab_ps_rpo_seconds",
      help: "Age of the oldest write not yet in storage (0 when caught up)",
      labelNames: ["machine_id"],
      registers,
    });
    this.processedLagSeconds = new Gauge({
      name: "srlab_ps_processed_lag_seconds",
      help: "Age of the oldest write uploaded but not yet applied to the replica (0 when processed)",
      labelNames: ["machine_id"],
      registers,
    });
    this.unprocessedBytes = new Gauge({
      name: "srlab_ps_unprocessed_bytes",
      help: "Bytes uploaded but not yet applied to the replica",
      labelNames: ["machine_id"],
      registers,
    });
    this.applyRequests = new Counter({
      name: "srlab_ps_apply_requests_total",
      help: "Storage requests made applying writes to replica page blobs (kind: write, read, clear)",
      labelNames: ["machine_id", "kind"],
      registers,
    });
    this.masterTargetReconnects = new Counter({
      name: "srlab_ps_master_target_reconnects_total",
      help: "Failed or broken failback streams to the master target (each followed by a reconnect)",
      labelNames: ["machine_id"],
      registers,
    });
    this.cacheCapacityBytes = new Gauge({
      name: "srlab_ps_cache_capacity_bytes",
      help: "Space the disk cache may use: cache.capacityBytes, or the cache file system's size",
      registers,
    });
    this.cacheFreeRatio = new Gauge({
      name: "srlab_ps_cache_free_ratio",
      help: "Free cache space, 0 to 1 (ASR warns below 0.30 and is critical below 0.25)",
      registers,
    });
    // Until the first measurement the cache is empty, not full.
    this.cacheFreeRatio.set(1);
    this.uploadBacklogBytes = new Gauge({
      name: "srlab_ps_upload_backlog_bytes",
      help: "Bytes received and not yet uploaded to storage, all machines",
      registers,
    });
    this.uploadBacklogSeconds = new Gauge({
      name: "srlab_ps_upload_backlog_seconds",
      help: "Age of the oldest write not yet uploaded, all machines",
      registers,
    });
    this.healthSeverity = new Gauge({
      name: "srlab_ps_health_severity",
      help: "The process server's health: 0 normal, 1 warning, 2 critical",
      registers,
    });
    const source = () => this.applyBlockCacheSource();
    this.applyBlockCacheBytes = new Gauge({
      name: "srlab_ps_apply_block_cache_bytes",
      help: "Replica bytes held for block-wise apply (apply.blockCacheBytes at most)",
      registers,
      collect() {
        this.set(source());
      },
    });
  }
}
