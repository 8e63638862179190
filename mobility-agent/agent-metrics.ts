import { Counter, Gauge, type Registry } from "prom-client";
import { CaptureMode } from "../proto/index.js";
import type { Capture } from "./capture.js";
import type { ReplicationClient } from "./replication-client.js";

const MODES: Array<[string, CaptureMode]> = [
  ["data", CaptureMode.CAPTURE_MODE_DATA],
  ["metadata", CaptureMode.CAPTURE_MODE_METADATA],
  ["bitmap", CaptureMode.CAPTURE_MODE_BITMAP],
];

/**
 * Prometheus series read from the live capture and stream at scrape time. Every series carries
 * `machine` (the machine's name, as in `srlab status`); names follow Prometheus conventions:
 * base units (`_bytes`, `_seconds`), `_total` only on counters.
 */
export function registerAgentMetrics(registry: Registry, machine: string, capture: Capture, replication: () => ReplicationClient | undefined): void {
  const labels = { machine };
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["machine"],
      registers: [registry],
      collect() {
        this.set(labels, read());
      },
    });
  // A running total kept by the capture or stream, exposed as a counter (it only grows while the
  // process lives; a restart starts it again, which rate() handles).
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      labelNames: ["machine"],
      registers: [registry],
      collect() {
        this.reset();
        this.inc(labels, Math.max(0, read()));
      },
    });
  gauge("srlab_agent_rpo_seconds", "Age of the oldest write not yet durable at the process server", () => capture.rpoSeconds());
  gauge("srlab_agent_pending_bytes", "Disk bytes changed and not yet durable at the process server", () => capture.pendingBytes);
  gauge("srlab_agent_queue_memory_bytes", "Payload bytes held in memory (data mode)", () => capture.memoryBytes);
  gauge("srlab_agent_queue_records", "Captured records waiting for acknowledgement", () => capture.queuedRecords);
  gauge("srlab_agent_in_flight_bytes", "Payload bytes sent and not yet acknowledged", () => capture.inFlightBytes);
  new Gauge({
    name: "srlab_agent_capture_mode",
    help: "Capture mode: 1 for the mode in force (data, metadata or bitmap), 0 for the others",
    labelNames: ["machine", "mode"],
    registers: [registry],
    collect() {
      for (const [mode, value] of MODES) this.set({ machine, mode }, capture.mode === value ? 1 : 0);
    },
  });
  gauge("srlab_agent_metadata_bytes", "Memory held by metadata-mode records", () => capture.metadataBytes);
  new Gauge({
    name: "srlab_agent_capture_mode_seconds",
    help: "Seconds the capture spent in each mode since the agent started",
    labelNames: ["machine", "mode"],
    registers: [registry],
    collect() {
      for (const [mode, value] of MODES) this.set({ machine, mode }, capture.secondsIn(value));
    },
  });
  gauge("srlab_agent_dirty_blocks", "Blocks marked in the dirty bitmaps", () => capture.dirtyBlocks);
  gauge("srlab_agent_last_sequence", "Highest sequence number assigned", () => capture.lastSequence);
  gauge("srlab_agent_acked_sequence", "Highest sequence number acknowledged by the process server", () => capture.ackedSequence);
  counter("srlab_agent_acked_bytes_total", "Payload bytes acknowledged by the process server since start", () => capture.bytesAcked);
  counter("srlab_agent_sent_bytes_total", "Payload bytes written to the stream since start, resends included", () => replication()?.bytesSent ?? 0);
  gauge("srlab_agent_throughput_bytes_per_second", "Acknowledged payload bytes per second over the last 10 s", () => replication()?.throughput() ?? 0);
  gauge("srlab_agent_resync_required", "1 when the machine needs a checksum resync", () => (capture.resyncRequired ? 1 : 0));
  gauge("srlab_agent_stream_open", "1 while the replication stream is open", () => (capture.isStreamOpen ? 1 : 0));
  gauge("srlab_agent_replication_halted", "1 when replication stopped on a non-recoverable error", () => (replication()?.state === "halted" ? 1 : 0));
}
