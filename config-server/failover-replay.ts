import type { ResolvedTarget } from "../common/recovery/index.js";
import type { BlobStore } from "../common/storage/index.js";

/** The time a failover's log replay will take, learnt from the previous replay's rate. */
export class ReplayEstimator {
  /** Replay throughput of the last failover that replayed (segment bytes per second), for the next estimate. */
  private bytesPerSecond?: number;
  private readonly segmentSizes = new Map<string, number>();

  constructor(private readonly blobs: BlobStore) {}

  /**
   * What `latest` (or a sequence/time) costs beyond copying the base point: the writes and log
   * bytes to replay, and a time at the last replay's rate. Said before the replay starts, so an
   * operator choosing between RPO and RTO sees the price.
   */
  async estimate(resolved: ResolvedTarget): Promise<string | undefined> {
    if (resolved.replaySegments.length === 0) return undefined;
    const prefix = resolved.replaySegments[0]!.slice(0, resolved.replaySegments[0]!.lastIndexOf("/") + 1);
    try {
      for (const o of await this.blobs.listObjects(prefix)) this.segmentSizes.set(o.name, o.size);
    } catch {
      // Only an estimate: the replay itself reports storage errors.
    }
    const bytes = resolved.replaySegments.reduce((n, name) => n + (this.segmentSizes.get(name) ?? 0), 0);
    const writes = resolved.sequence - resolved.base.sequence;
    const rate = this.bytesPerSecond;
    const time = rate ? `, about ${Math.max(1, Math.round(bytes / rate))} s at the last replay's ${(rate / 1e6).toFixed(1)} MB/s` : "";
    return `replay of ${writes} writes in ${resolved.replaySegments.length} log segments (${(bytes / 2 ** 20).toFixed(1)} MiB) after point ${resolved.base.recoveryPointId || "origin"}${time}`;
  }

  /** Records the rate of a replay that just ended. */
  note(segments: string[], seconds: number): void {
    const bytes = segments.reduce((n, name) => n + (this.segmentSizes.get(name) ?? 0), 0);
    if (bytes > 0 && seconds > 0) this.bytesPerSecond = bytes / seconds;
  }
}
