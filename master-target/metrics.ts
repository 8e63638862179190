import { Counter, Gauge } from "prom-client";
import type { Registry } from "../common/metrics/index.js";

/** The master target's Prometheus series; per-machine series carry a `machine` label. */
export class MasterTargetMetrics {
  readonly appliedBytes: Counter<"machine">;
  readonly appliedRecords: Counter<"machine">;
  readonly appliedSequence: Gauge<"machine">;
  readonly rejectedBatches: Counter<"machine" | "code">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.appliedBytes = new Counter({
      name: "srlab_mt_applied_bytes_total",
      help: "Bytes written (data and zeros) to target images and fsynced",
      labelNames: ["machine"],
      registers,
    });
    this.appliedRecords = new Counter({
      name: "srlab_mt_applied_records_total",
      help: "Write records applied to target images and fsynced",
      labelNames: ["machine"],
      registers,
    });
    this.appliedSequence = new Gauge({
      name: "srlab_mt_applied_sequence",
      help: "Highest sequence durably applied to the machine's target images",
      labelNames: ["machine"],
      registers,
    });
    this.rejectedBatches = new Counter({
      name: "srlab_mt_rejected_batches_total",
      help: "ApplyWrites batches refused (bad input, out of range, sequence gap)",
      labelNames: ["machine", "code"],
      registers,
    });
  }
}
