import { Gauge, type Registry } from "prom-client";
import { CaptureMode } from "../proto/index.js";
import type { Capture } from "./capture.js";
import type { ReplicationClient } from "./replication-client.js";

/** Prometheus gauges read from the live capture and stream at scrape time. */
export function registerAgentMetrics(registry: Registry, capture: Capture, replication: () => ReplicationClient | undefined): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge("srlab_agent_rpo_seconds", "Age of the oldest write not yet durable at the process server", () => capture.rpoSeconds());
  gauge("srlab_agent_pending_bytes", "Disk bytes changed and not yet durable at the process server", () => capture.pendingBytes);
  gauge("srlab_agent_queue_memory_bytes", "Payload bytes held in memory (data mode)", () => capture.memoryBytes);
  gauge("srlab_agent_queue_records", "Captured records waiting for acknowledgement", () => capture.queuedRecords);
  gauge("srlab_agent_in_flight_bytes", "Payload bytes sent and not yet acknowledged", () => capture.inFlightBytes);
  gauge("srlab_agent_capture_mode", "Capture mode (1 data, 2 metadata, 3 bitmap)", () => capture.mode);
  gauge("srlab_agent_metadata_bytes", "Memory held by metadata-mode records", () => capture.metadataBytes);
  new Gauge({
    name: "srlab_agent_capture_mode_seconds",
    help: "Seconds the capture spent in each mode since the agent started",
    labelNames: ["mode"],
    registers: [registry],
    collect() {
      this.set({ mode: "data" }, capture.secondsIn(CaptureMode.CAPTURE_MODE_DATA));
      this.set({ mode: "metadata" }, capture.secondsIn(CaptureMode.CAPTURE_MODE_METADATA));
      this.set({ mode: "bitmap" }, capture.secondsIn(CaptureMode.CAPTURE_MODE_BITMAP));
    },
  });
  gauge("srlab_agent_dirty_blocks", "Blocks marked in the dirty bitmaps", () => capture.dirtyBlocks);
  gauge("srlab_agent_last_sequence", "Highest sequence number assigned", () => capture.lastSequence);
  gauge("srlab_agent_acked_sequence", "Highest sequence number acknowledged by the process server", () => capture.ackedSequence);
  gauge("srlab_agent_bytes_acked", "Payload bytes acknowledged since start", () => capture.bytesAcked);
  gauge("srlab_agent_bytes_sent", "Payload bytes written to the stream since start, resends included", () => replication()?.bytesSent ?? 0);
  gauge("srlab_agent_throughput_bytes_per_second", "Acknowledged payload bytes per second", () => replication()?.throughput() ?? 0);
  gauge("srlab_agent_resync_required", "1 when the machine needs a checksum resync", () => (capture.resyncRequired ? 1 : 0));
  gauge("srlab_agent_stream_open", "1 while the replication stream is open", () => (capture.isStreamOpen ? 1 : 0));
  gauge("srlab_agent_replication_halted", "1 when replication stopped on a non-recoverable error", () =>
    replication()?.state === "halted" ? 1 : 0,
  );
}
