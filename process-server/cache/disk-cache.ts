import { mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, silentLogger } from "../../common/logger.js";
import type { WriteRecord } from "../../proto/index.js";
import { CacheUnavailableError } from "./errors.js";
import { fsyncDir } from "../../common/fs/index.js";
import { decodeMachineDir, encodeMachineDir } from "./machine-dir.js";
import { DEFAULT_TAIL_BYTES, MachineLog, type MachineLogCounters } from "./machine-log.js";

export interface DiskCacheOptions {
  /** Above this many bytes on disk the PS should throttle agents (isAboveHighWater). */
  highWaterBytes: number;
  logger?: Logger;
  /** Log files rotate at about this size; space is reclaimed a whole file at a time. */
  fileSizeBytes?: number;
  /** Recent durable frames each machine keeps in memory for the uploader (default 32 MiB). */
  tailBytes?: number;
}

export type DiskCacheStats = MachineLogCounters;

/**
 * The process server's disk spool. append() resolves only once the records are fsynced, so the
 * PS may ack them; release() drops what the uploader has put in storage. Survives SIGKILL at any
 * point: open() re-scans the logs, verifies CRCs and cuts a torn tail.
 */
export class DiskCache {
  private readonly logs = new Map<string, MachineLog>();
  private readonly counters: MachineLogCounters = { fsyncs: 0, appendedRecords: 0, appendedBytes: 0 };
  private closed = false;

  private constructor(
    private readonly machinesDir: string,
    private readonly highWaterBytes: number,
    private readonly fileSizeBytes: number,
    private readonly tailBytes: number,
    private readonly log: Logger,
  ) {}

  static async open(dir: string, options: DiskCacheOptions): Promise<DiskCache> {
    const log = options.logger ?? silentLogger();
    const machinesDir = join(dir, "machines");
    await mkdir(machinesDir, { recursive: true });
    await fsyncDir(dir);
    const cache = new DiskCache(machinesDir, options.highWaterBytes, options.fileSizeBytes ?? 64 * 1024 * 1024, options.tailBytes ?? DEFAULT_TAIL_BYTES, log);
    for (const name of await readdir(machinesDir)) {
      const machineId = decodeMachineDir(name);
      if (!machineId || encodeMachineDir(machineId) !== name || !(await stat(join(machinesDir, name))).isDirectory()) {
        log.warn("ignoring unexpected entry in cache directory", { name });
        continue;
      }
      const m = cache.machine(machineId);
      await m.recover();
    }
    log.info("disk cache opened", {
      dir,
      machines: cache.logs.size,
      usedBytes: cache.usedBytes(),
      pending: Object.fromEntries([...cache.logs.values()].map((m) => [m.machineId, m.lastSequence - m.releasedSequence])),
    });
    return cache;
  }

  private machine(machineId: string): MachineLog {
    let m = this.logs.get(machineId);
    if (!m) {
      if (!machineId) throw new RangeError("machine id must not be empty");
      const dir = join(this.machinesDir, encodeMachineDir(machineId));
      m = new MachineLog(machineId, dir, this.machinesDir, this.fileSizeBytes, this.counters, this.log, this.tailBytes);
      this.logs.set(machineId, m);
    }
    return m;
  }

  private checkOpen(): void {
    if (this.closed) throw new CacheUnavailableError("disk cache is closed");
  }

  /**
   * Appends records (sequence must continue the stream; already-received ones are skipped, a gap
   * throws SequenceGapError) and resolves with the machine's durable sequence once fsynced. The
   * cache keeps the records and their payloads as they are (no copy): neither may change afterwards.
   */
  async append(machineId: string, records: WriteRecord[]): Promise<number> {
    this.checkOpen();
    return this.machine(machineId).append(records);
  }

  /** Highest durable (acknowledgeable) sequence; 0 for an unknown machine. */
  lastSequence(machineId: string): number {
    return this.logs.get(machineId)?.lastSequence ?? 0;
  }

  /** Highest sequence released (uploaded); 0 for an unknown machine. */
  releasedSequence(machineId: string): number {
    return this.logs.get(machineId)?.releasedSequence ?? 0;
  }

  /** Durable records from fromSequence on, about maxBytes of payload (at least one). */
  async read(machineId: string, fromSequence: number, maxBytes: number): Promise<WriteRecord[]> {
    this.checkOpen();
    const m = this.logs.get(machineId);
    return m ? m.read(fromSequence, maxBytes) : [];
  }

  /** Records through throughSequence are in storage: persist that and reclaim whole files. */
  async release(machineId: string, throughSequence: number): Promise<void> {
    this.checkOpen();
    const m = this.logs.get(machineId);
    if (!m) {
      if (throughSequence > 0) throw new RangeError(`machine "${machineId}" has nothing cached to release`);
      return;
    }
    await m.release(throughSequence);
  }

  /** Starts (or restarts) a machine's stream after lastSequence; only while nothing is pending. */
  async setBaseSequence(machineId: string, lastSequence: number): Promise<void> {
    this.checkOpen();
    await this.machine(machineId).setBase(lastSequence);
  }

  /**
   * Deletes everything cached for a machine, pending records included: callers either drained it
   * first (handover to another process server) or gave it up (protection disabled).
   */
  async forget(machineId: string): Promise<void> {
    this.checkOpen();
    const m = this.logs.get(machineId);
    if (!m) return;
    this.logs.delete(machineId);
    await m.destroy();
  }

  usedBytes(): number {
    let n = 0;
    for (const m of this.logs.values()) n += m.bytes;
    return n;
  }

  isAboveHighWater(): boolean {
    return this.usedBytes() > this.highWaterBytes;
  }

  /** Capture time of the oldest record not yet released: the machine's RPO start. */
  oldestPendingCapturedAtMs(machineId: string): number | undefined {
    return this.logs.get(machineId)?.oldestPendingCapturedAtMs;
  }

  machines(): string[] {
    return [...this.logs.keys()];
  }

  stats(): DiskCacheStats {
    return { ...this.counters };
  }

  /** Finishes in-flight appends, then closes files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.logs.values()].map((m) => m.close()));
  }
}
