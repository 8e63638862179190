import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "../common/metrics/index.js";

/** The process server's Prometheus series; per-machine series carry a `machine` label. */
export class ProcessServerMetrics {
  readonly receivedBytes: Counter<"machine">;
  readonly receivedRecords: Counter<"machine">;
  readonly acks: Counter<"machine">;
  readonly rejectedBatches: Counter<"machine" | "code">;
  readonly cacheBytes: Gauge;
  readonly uploadedSegments: Counter<"machine">;
  readonly uploadedBytes: Counter<"machine">;
  readonly uploadFailures: Counter<"machine">;
  readonly uploadSeconds: Histogram;
  readonly appliedRecords: Counter<"machine">;
  readonly recoveryPoints: Counter<"machine" | "type">;
  readonly rpoSeconds: Gauge<"machine">;
  readonly processedLagSeconds: Gauge<"machine">;
  readonly unprocessedBytes: Gauge<"machine">;
  readonly applyRequests: Counter<"machine" | "kind">;
  readonly masterTargetReconnects: Counter<"machine">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.receivedBytes = new Counter({
      name: "srlab_ps_received_bytes_total",
      help: "Payload bytes received from agents and made durable in the cache",
      labelNames: ["machine"],
      registers,
    });
    this.receivedRecords = new Counter({
      name: "srlab_ps_received_records_total",
      help: "Write records received from agents and made durable in the cache",
      labelNames: ["machine"],
      registers,
    });
    this.acks = new Counter({ name: "srlab_ps_acks_total", help: "Acks sent to agents", labelNames: ["machine"], registers });
    this.rejectedBatches = new Counter({
      name: "srlab_ps_rejected_batches_total",
      help: "Batches refused (bad input, sequence gap)",
      labelNames: ["machine", "code"],
      registers,
    });
    this.cacheBytes = new Gauge({ name: "srlab_ps_cache_bytes", help: "Bytes held in the disk cache", registers });
    this.uploadedSegments = new Counter({
      name: "srlab_ps_uploaded_segments_total",
      help: "Log segments uploaded to storage",
      labelNames: ["machine"],
      registers,
    });
    this.uploadedBytes = new Counter({
      name: "srlab_ps_uploaded_bytes_total",
      help: "Encoded (compressed, encrypted) segment bytes uploaded",
      labelNames: ["machine"],
      registers,
    });
    this.uploadFailures = new Counter({
      name: "srlab_ps_upload_failures_total",
      help: "Failed segment upload attempts",
      labelNames: ["machine"],
      registers,
    });
    this.uploadSeconds = new Histogram({
      name: "srlab_ps_upload_seconds",
      help: "Time to encode and upload one segment",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.appliedRecords = new Counter({
      name: "srlab_ps_applied_records_total",
      help: "Records applied to replica page blobs, or acknowledged by the master target (failback)",
      labelNames: ["machine"],
      registers,
    });
    this.recoveryPoints = new Counter({
      name: "srlab_ps_recovery_points_total",
      help: "Recovery points created",
      labelNames: ["machine", "type"],
      registers,
    });
    this.rpoSeconds = new Gauge({
      name: "srlab_ps_rpo_seconds",
      help: "Age of the oldest write not yet in storage (0 when caught up)",
      labelNames: ["machine"],
      registers,
    });
    this.processedLagSeconds = new Gauge({
      name: "srlab_ps_processed_lag_seconds",
      help: "Age of the oldest write uploaded but not yet applied to the replica (0 when processed)",
      labelNames: ["machine"],
      registers,
    });
    this.unprocessedBytes = new Gauge({
      name: "srlab_ps_unprocessed_bytes",
      help: "Bytes uploaded but not yet applied to the replica",
      labelNames: ["machine"],
      registers,
    });
    this.applyRequests = new Counter({
      name: "srlab_ps_apply_requests_total",
      help: "Storage requests made applying writes to replica page blobs (kind: write, read, clear)",
      labelNames: ["machine", "kind"],
      registers,
    });
    this.masterTargetReconnects = new Counter({
      name: "srlab_ps_master_target_reconnects_total",
      help: "Failed or broken failback streams to the master target (each followed by a reconnect)",
      labelNames: ["machine"],
      registers,
    });
  }
}
