import type { WriteRecord } from "../proto/index.js";

/**
 * What the replication pipeline needs from the disk cache (process-server/cache's DiskCache
 * satisfies it); a narrow seam so the pipeline can be exercised without the real spool.
 */
export interface WriteCache {
  /** Resolves with the durable (fsynced) last sequence; already-held sequences are skipped. */
  append(machineId: string, records: WriteRecord[]): Promise<number>;
  /** Records from `fromSequence` on, up to about `maxBytes` (at least one when any is held). */
  read(machineId: string, fromSequence: number, maxBytes: number): Promise<WriteRecord[]>;
  /** Records up to `throughSequence` are in storage; the cache may drop them. */
  release(machineId: string, throughSequence: number): Promise<void>;
  lastSequence(machineId: string): number;
  readonly usedBytes: number;
  readonly isAboveHighWater: boolean;
  oldestPendingCapturedAtMs(machineId: string): number | undefined;
  close(): Promise<void>;
}
