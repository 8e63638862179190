import { Counter, Gauge } from "prom-client";
import type { Registry } from "../common/metrics/index.js";

/** The master target's Prometheus series; per-machine series carry `machine_id` (the configuration
 * server's srlab_cs_machine_info maps it to the machine's name). */
export class MasterTargetMetrics {
  readonly appliedBytes: Counter<"machine_id">;
  readonly appliedRecords: Counter<"machine_id">;
  readonly appliedSequence: Gauge<"machine_id">;
  readonly rejectedBatches: Counter<"machine_id" | "code">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.appliedBytes = new Counter({
      name: "srlab_mt_applied_bytes_total",
      help: "Bytes written (data and zeros) to target images and fsynced",
      labelNames: ["machine_id"],
      registers,
    });
    this.appliedRecords = new Counter({
      name: "srlab_mt_applied_records_total",
      help: "Write records applied to target images and fsynced",
      labelNames: ["machine_id"],
      registers,
    });
    this.appliedSequence = new Gauge({
      name: "srlab_mt_applied_sequence",
      help: "Highest sequence durably applied to the machine's target images",
      labelNames: ["machine_id"],
      registers,
    });
    this.rejectedBatches = new Counter({
      name: "srlab_mt_rejected_batches_total",
      help: "ApplyWrites batches refused (bad input, out of range, sequence gap)",
      labelNames: ["machine_id", "code"],
      registers,
    });
  }
}
