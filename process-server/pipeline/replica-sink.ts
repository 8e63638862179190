import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Mutex } from "../../common/async/index.js";
import type { BufferPool } from "../../common/bytes/index.js";
import { formatByteRange } from "../../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { writeFileAtomic } from "../../common/fs/index.js";
import type { Logger } from "../../common/logger.js";
import {
  type ApplyCostModel,
  type ApplyObserver,
  type ApplyStats,
  applyRecords,
  blobPageTarget,
  type CachedReplica,
  isMarker,
  type ReplicaBlockCache,
  recordRange,
} from "../../common/replica/index.js";
import type { BlobStore } from "../../common/storage/index.js";
import { WriteKind, type WriteRecord } from "../../proto/index.js";
import type { ApplySink } from "./apply-sink.js";
import { pageBlobSizeFor } from "../../common/replica/index.js";
import type { Machine } from "../machine.js";
import type { ReplicaDisk } from "../machine-registry.js";
import type { ProcessServerMetrics } from "../metrics.js";
import { disksCoveredAt, type PointDocument, type PointStore } from "../points/index.js";
import { replicaBlobName } from "../../common/storage-layout/index.js";
import { type StorageStage, withStorageRetry } from "./storage-retry.js";
import { ReplicaChecksumMap } from "./checksum-map.js";
import { checksumMapPath } from "./checksum-map-files.js";
import { StorageWatch } from "./storage-watch.js";

export interface ReplicaSinkOptions {
  machine: Machine;
  store: BlobStore;
  points: PointStore;
  retryTimeUnitMs: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  /** A point was made (or found already made after a restart): report it to the CS. */
  onPoint: (doc: PointDocument) => void;
  /** The processed position moved; persist it. */
  onProcessed: () => Promise<void>;
  /**
   * Calls in flight per disk, the cost model of block-wise apply (absent: one call per run), the
   * pool its block buffers are reused from (absent: fresh ones) and the cache of replica bytes it
   * rewrites blocks from instead of reading them (absent: every such byte is read).
   */
  apply: { concurrency: number; cost?: ApplyCostModel; buffers?: BufferPool; blockCache?: ReplicaBlockCache };
  /**
   * Where the replica checksum maps are persisted (`<dir>/<machine id>/disk-<index>.xxh3map`) and
   * how often a changed one is written; absent: no maps, resync checksums read the replica.
   */
  checksumMaps?: { dir: string; persistIntervalMs: number };
}

/**
 * The on-premises → Azure sink: applies writes to the replica page blobs and turns TAG records
 * into app-consistent recovery points, taken exactly after everything before the tag is applied.
 */
export class ReplicaSink implements ApplySink {
  private readonly abort = new AbortController();
  private readonly createdBlobs = new Set<number>();
  private lastPointSequence = 0;
  /**
   * Highest agent sequence at which a payload applied so far was read from the disk (metadata
   * mode). A point below it may hold bytes of later writes; kept in memory only, so a restarted
   * process server marks only what it applies afterwards.
   */
  private readAtHigh = 0;
  private readonly mapLock = new Mutex();
  private persistTimer?: NodeJS.Timeout;
  private unwatch?: () => void;
  private unwatchKnown?: () => void;
  /** Per disk: what this sink knows its replica holds (see ReplicaBlockCache). */
  private readonly known = new Map<number, CachedReplica>();

  constructor(private readonly o: ReplicaSinkOptions) {}

  async init(): Promise<void> {
    const { machine } = this.o;
    await this.loadMaps();
    // Storage that restarted may have lost acknowledged writes the cache still holds.
    if (this.o.apply.blockCache) this.unwatchKnown = StorageWatch.of(this.o.store).onRestarted(() => this.forgetKnown());
    const points = await this.retry("listing of recovery points", () => this.o.points.list(machine.id));
    this.lastPointSequence = points.at(-1)?.sequence ?? 0;
    // Facts from before BASE records (or rebuilt after a lost data dir): a disk some point covers is complete there.
    for (const d of machine.diskList()) {
      if (d.baseSequence !== undefined) continue;
      const first = points.find((p) => p.snapshots[String(d.index)] !== undefined);
      if (first) machine.setDisk({ ...d, baseSequence: first.sequence });
    }
  }

  async close(): Promise<void> {
    this.abort.abort(new Error("process server stopping"));
    clearInterval(this.persistTimer);
    this.unwatch?.();
    this.unwatchKnown?.();
    this.forgetKnown();
  }

  /**
   * Writes every changed checksum map (atomically); called on a timer and after the applier
   * stopped. A map's file records the processed sequence it covers: a restart trusts it only when
   * that is exactly where the replica's state says processing stands.
   */
  persistChecksums(): Promise<void> {
    const dir = this.o.checksumMaps?.dir;
    if (!dir) return Promise.resolve();
    return this.mapLock.run(async () => {
      for (const [index, map] of this.o.machine.checksumMaps) {
        if (!map.dirty) continue;
        map.dirty = false;
        // Serialised at once: the file is one consistent moment of the map.
        const bytes = map.serialize();
        try {
          await mkdir(join(dir, this.o.machine.id), { recursive: true });
          await writeFileAtomic(this.mapPath(index), bytes);
        } catch (err) {
          map.dirty = true;
          this.o.logger.warn("could not persist a replica checksum map; it is rebuilt from storage after a restart", {
            machineId: this.o.machine.id,
            disk: index,
            error: (err as Error).message,
          });
        }
      }
    });
  }

  /** Applied synchronously: nothing is left to wait for. */
  async settle(): Promise<void> {}

  async skipTo(sequence: number): Promise<void> {
    // Writes applied before a crash but never made processed may sit in the replica beyond the hole.
    this.forgetKnown();
    for (const map of this.o.machine.checksumMaps.values()) {
      map.invalidate();
      map.coveredSequence = sequence;
    }
    this.o.machine.processed.advance(sequence);
  }

  /** `records` are contiguous and start right after the processed position. */
  async apply(records: WriteRecord[]): Promise<void> {
    const { machine, metrics } = this.o;
    let run: WriteRecord[] = [];
    for (const [i, r] of records.entries()) {
      if (r.readAtSequence > this.readAtHigh) this.readAtHigh = r.readAtSequence;
      if (r.kind !== WriteKind.WRITE_KIND_TAG && r.kind !== WriteKind.WRITE_KIND_BASE) {
        run.push(r);
        continue;
      }
      await this.applyToDisks(run);
      run = [];
      machine.processed.advance(r.sequence - 1);
      if (r.kind === WriteKind.WRITE_KIND_TAG) {
        await this.makePoint({ type: "app-consistent", sequence: r.sequence, tagName: r.tagName, consistencyGroup: r.consistencyGroup });
      } else {
        await this.markBase(r);
        // The BASE records of one sync come in a row: one point after the last of them.
        if (records[i + 1]?.kind !== WriteKind.WRITE_KIND_BASE) await this.makePoint({ type: "crash-consistent", sequence: r.sequence, base: true });
      }
      machine.processed.advance(r.sequence);
    }
    await this.applyToDisks(run);
    machine.processed.advance(records[records.length - 1]!.sequence);
    for (const map of machine.checksumMaps.values()) map.coveredSequence = machine.processed.value;
    metrics.appliedRecords.inc({ machine_id: machine.id }, records.length);
    await this.o.onProcessed();
  }

  /**
   * A crash-consistent point at the processed position, or undefined when nothing changed since
   * the last point or no disk has finished its initial copy yet (a point then would hold a
   * half-copied disk).
   */
  async crashPoint(): Promise<PointDocument | undefined> {
    const sequence = this.o.machine.processed.value;
    if (sequence === 0 || sequence <= this.lastPointSequence) return undefined;
    if (disksCoveredAt(this.o.machine, sequence).length === 0) return undefined;
    return this.makePoint({ type: "crash-consistent", sequence });
  }

  /** The disk's copy is complete at this record: points from here on cover it. */
  private async markBase(r: WriteRecord): Promise<void> {
    const { machine, logger } = this.o;
    const disk = await this.ensureReplica(r.diskIndex);
    if (disk.baseSequence !== undefined && disk.baseSequence <= r.sequence) return;
    machine.setDisk({ ...disk, baseSequence: r.sequence });
    await machine.save();
    logger.info("disk copy complete: recoverable from here on", { machineId: machine.id, disk: r.diskIndex, sequence: r.sequence });
  }

  private async applyToDisks(run: WriteRecord[]): Promise<void> {
    if (run.length === 0) return;
    const indexes = [...new Set(run.map((r) => r.diskIndex))];
    await Promise.all(
      indexes.map(async (index) => {
        const disk = await this.ensureReplica(index);
        const blob = replicaBlobName(this.o.machine.id, index);
        const { concurrency, cost } = this.o.apply;
        const map = this.o.machine.checksumMaps.get(index);
        const observer: ApplyObserver | undefined = map && {
          read: (offset, data) => map.observe(offset, data, map.mark()),
          write: (offset, data, changed) => map.write(offset, data, changed),
          clear: (offset, length) => map.clear(offset, length),
        };
        const stats = await this.retry(`apply to ${blob}`, async () => {
          try {
            return await applyRecords(blobPageTarget(this.o.store, blob), run, index, pageBlobSizeFor(disk.sizeBytes), {
              concurrency,
              blocks: cost ? { cost } : undefined,
              buffers: this.o.apply.buffers,
              observer,
              known: this.knownOf(index, pageBlobSizeFor(disk.sizeBytes)),
            });
          } catch (err) {
            this.forgetKnown(index);
            // A failed attempt may have written part of what it was given: unknown until re-applied or read.
            if (map) {
              for (const r of run) {
                if (r.diskIndex !== index || isMarker(r)) continue;
                const { start, end } = recordRange(r);
                map.forget(start, end - start);
              }
            }
            throw err;
          }
        });
        this.count(stats);
      }),
    );
    this.o.machine.processed.advance(run[run.length - 1]!.sequence);
  }

  /** The disk's cached bytes; a disk whose size changed starts afresh. */
  private knownOf(index: number, sizeBytes: number): CachedReplica | undefined {
    const cache = this.o.apply.blockCache;
    if (!cache) return undefined;
    let view = this.known.get(index);
    if (view?.sizeBytes !== sizeBytes) {
      if (view) cache.drop(view);
      view = cache.view(sizeBytes);
      this.known.set(index, view);
    }
    return view;
  }

  /** Nothing cached about the disk (all disks without an index) is trusted any more. */
  private forgetKnown(index?: number): void {
    for (const [i, view] of this.known) {
      if (index !== undefined && i !== index) continue;
      this.o.apply.blockCache?.drop(view);
      this.known.delete(i);
    }
  }

  private count(stats: ApplyStats): void {
    const { applyRequests } = this.o.metrics;
    const machine_id = this.o.machine.id;
    applyRequests.inc({ machine_id, kind: "write" }, stats.writeCalls);
    applyRequests.inc({ machine_id, kind: "read" }, stats.readCalls);
    applyRequests.inc({ machine_id, kind: "clear" }, stats.clearCalls);
  }

  /** Creates the replica blob the first time this process applies to it (idempotent). */
  private async ensureReplica(index: number): Promise<ReplicaDisk> {
    const { machine, store } = this.o;
    let disk = machine.disk(index);
    if (!disk) {
      // Facts lost (e.g. a wiped data dir): the replica blob in storage still knows the size.
      const size = await this.retry("replica size lookup", () => store.pageBlobSize(replicaBlobName(machine.id, index)));
      if (size === undefined) throw new SrlabError(ErrorCode.DISK_NOT_FOUND, `machine ${machine.id} has no disk ${index}`);
      disk = { index, sizeBytes: size, addedAtSequence: 0 };
      machine.setDisk(disk);
    }
    if (!this.createdBlobs.has(index)) {
      const d = disk;
      await this.retry("replica creation", () => store.createPageBlob(replicaBlobName(machine.id, index), pageBlobSizeFor(d.sizeBytes)));
      this.createdBlobs.add(index);
    }
    if (this.o.checksumMaps && !machine.checksumMaps.has(index)) this.adoptMap(index, new ReplicaChecksumMap(disk.sizeBytes));
    return disk;
  }

  private mapPath(index: number): string {
    return checksumMapPath(this.o.checksumMaps!.dir, this.o.machine.id, index);
  }

  /**
   * The maps persisted by the last run, trusted only when they cover exactly the processed
   * position restored from storage; any other map starts with every page unknown and is rebuilt
   * from storage reads (a resync's, or the applier's own block reads).
   */
  private async loadMaps(): Promise<void> {
    const { machine, logger, checksumMaps } = this.o;
    if (!checksumMaps) return;
    for (const disk of machine.diskList()) {
      let map: ReplicaChecksumMap | undefined;
      let why = "no map was persisted";
      try {
        const loaded = ReplicaChecksumMap.deserialize(await readFile(this.mapPath(disk.index)), disk.sizeBytes);
        const processed = machine.processed.value;
        if (processed > 0 && loaded.coveredSequence === processed) map = loaded;
        else why = `the map covers sequence ${loaded.coveredSequence}, the replica is processed up to ${processed}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") why = (err as Error).message;
      }
      if (map) logger.info("replica checksum map loaded", { machineId: machine.id, disk: disk.index, coveredSequence: map.coveredSequence, knownPages: map.knownPages() });
      else logger.info("replica checksum map not trusted; rebuilt from storage as it is read", { machineId: machine.id, disk: disk.index, reason: why });
      this.adoptMap(disk.index, map ?? new ReplicaChecksumMap(disk.sizeBytes));
    }
    this.persistTimer = setInterval(() => void this.persistChecksums(), checksumMaps.persistIntervalMs);
    this.persistTimer.unref();
    // Storage that restarted may have lost acknowledged writes the maps still describe.
    this.unwatch = StorageWatch.of(this.o.store).onRestarted(() => {
      for (const map of machine.checksumMaps.values()) map.invalidate();
    });
  }

  private adoptMap(index: number, map: ReplicaChecksumMap): void {
    const { machine, logger } = this.o;
    map.coveredSequence = machine.processed.value;
    map.onDisagreement = (ranges) => {
      const where = ranges.slice(0, 3).map(formatByteRange).join(", ");
      machine.resyncReason ??= `the replica checksum map of disk ${index} disagrees with the replica at ${where}; a checksum resync makes the replica equal its source`;
      logger.error("replica checksum map disagrees with the replica; the map is rebuilt from storage and the machine needs a resync", {
        machineId: machine.id,
        disk: index,
        ranges: where,
      });
    };
    machine.checksumMaps.set(index, map);
  }

  private async makePoint(spec: Parameters<PointStore["create"]>[1]): Promise<PointDocument> {
    const { machine, metrics, logger } = this.o;
    if (this.readAtHigh > spec.sequence) spec = { ...spec, metadataMode: true };
    for (const d of machine.diskList()) await this.ensureReplica(d.index);
    const { doc, created } = await this.retry(`${spec.type} point at ${spec.sequence}`, () => this.o.points.create(machine, spec), "points");
    this.lastPointSequence = Math.max(this.lastPointSequence, spec.sequence);
    if (created) {
      metrics.recoveryPoints.inc({ machine_id: machine.id, type: spec.type });
      logger.info("recovery point created", { machineId: machine.id, pointId: doc.recoveryPointId, type: spec.type, sequence: spec.sequence });
    }
    this.o.onPoint(doc);
    return doc;
  }

  private retry<T>(operation: string, fn: () => Promise<T>, stage: StorageStage = "apply"): Promise<T> {
    return withStorageRetry(fn, {
      machine: this.o.machine,
      stage,
      operation: `${operation} (machine ${this.o.machine.id})`,
      timeUnitMs: this.o.retryTimeUnitMs,
      signal: this.abort.signal,
      logger: this.o.logger,
      store: this.o.store,
    });
  }
}
