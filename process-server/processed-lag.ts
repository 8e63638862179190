import type { WriteRecord } from "../proto/index.js";

interface UploadedRun {
  lastSequence: number;
  /** Capture time of the oldest write of the run. */
  oldestCapturedAtMs: number;
  bytes: number;
}

/**
 * What is uploaded but not yet applied to the replica: its size and the age of its oldest write
 * ("processed lag"). RPO only says the writes are safe in storage; this says how far a
 * `latest-processed` failover — and the replay `latest` must do first — has fallen behind.
 */
export class ProcessedLag {
  private readonly runs: UploadedRun[] = [];
  /** When the backlog was last seen empty: the lag's floor when runs are unknown (after a restart). */
  private caughtUpAtMs = Date.now();

  /** A run of records has been uploaded (in sequence order). */
  noteUploaded(records: readonly WriteRecord[], bytesOf: (r: WriteRecord) => number): void {
    if (records.length === 0) return;
    let oldest = Number.POSITIVE_INFINITY;
    let bytes = 0;
    for (const r of records) {
      if (r.capturedAtMs > 0 && r.capturedAtMs < oldest) oldest = r.capturedAtMs;
      bytes += bytesOf(r);
    }
    this.runs.push({ lastSequence: records[records.length - 1]!.sequence, oldestCapturedAtMs: Number.isFinite(oldest) ? oldest : Date.now(), bytes });
  }

  /** Lag and backlog at the given positions; forgets runs that are fully processed. */
  measure(processed: number, uploaded: number, now = Date.now()): { lagSeconds: number; unprocessedBytes: number } {
    while (this.runs.length && this.runs[0]!.lastSequence <= processed) this.runs.shift();
    if (processed >= uploaded) {
      this.runs.length = 0;
      this.caughtUpAtMs = now;
      return { lagSeconds: 0, unprocessedBytes: 0 };
    }
    const unprocessedBytes = this.runs.reduce((n, r) => n + r.bytes, 0);
    // Uploaded before this process started: only "at least since we last saw it caught up" is known.
    const oldest = this.runs[0]?.oldestCapturedAtMs ?? this.caughtUpAtMs;
    return { lagSeconds: Math.max(0, (now - oldest) / 1000), unprocessedBytes };
  }
}
