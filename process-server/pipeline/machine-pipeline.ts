import type { Semaphore } from "../../common/async/index.js";
import type { TlsFiles } from "../../common/grpc/index.js";
import type { Logger } from "../../common/logger.js";
import type { ApplyCostModel, ReplicaBlockCache } from "../../common/replica/index.js";
import type { BufferPool } from "../../common/bytes/index.js";
import type { CodecName, SegmentKeyRing } from "../../common/segment/index.js";
import type { BlobStore } from "../../common/storage/index.js";
import type { MachineAssignment, RecoveryPoint } from "../../proto/index.js";
import { Applier } from "./applier.js";
import type { ApplySink } from "./apply-sink.js";
import type { DiskCache } from "../cache/index.js";
import { type DirectionEpoch, routeOf } from "../direction-epochs.js";
import type { Machine } from "../machine.js";
import { MasterTargetSink } from "./master-target-sink.js";
import type { ProcessServerMetrics } from "../metrics.js";
import type { PointDocument, PointStore } from "../points/index.js";
import { RecoveryPointScheduler } from "../points/index.js";
import { ReplicaSink } from "./replica-sink.js";
import { failbackStateObjectName, type LogLocation, logLocation, stateObjectName } from "../../common/storage-layout/index.js";
import { recordBytes } from "../../common/wire/index.js";
import { Uploader } from "./uploader.js";

export interface PipelineOptions {
  cache: DiskCache;
  store: BlobStore;
  points: PointStore;
  segment: { maxBytes: number; maxDelayMs: number };
  /** Segments of one machine uploading at once. */
  uploadConcurrency: number;
  /** Upload permits shared by every machine of the process server. */
  uploadSlots: Semaphore;
  codec: CodecName;
  /** Current key for new segments, older ones for segments written before a rotation. */
  segmentKeys: SegmentKeyRing;
  retryTimeUnitMs: number;
  applyQueueBytes: number;
  apply: { concurrency: number; batchBytes: number; passIntervalMs: number; cost?: ApplyCostModel; buffers?: BufferPool; blockCache?: ReplicaBlockCache };
  /** Where the replica checksum maps live (beside the machine state) and how often they are saved; absent: none. */
  checksumMaps?: { dir: string; persistIntervalMs: number };
  logger: Logger;
  metrics: ProcessServerMetrics;
  onPoint: (doc: PointDocument) => void;
  /** A point of the way back, made by the master target. */
  onTargetPoint: (point: RecoveryPoint) => void;
  /** This process server's component id: it names the failback log and state. */
  processServerId: string;
  /** The process server's credential, presented to master targets. */
  credential: () => string;
  /** The process server's own TLS files (client side towards master targets); undefined when insecure. */
  tls: TlsFiles | undefined;
}

/**
 * The per-machine stages wired together: cache → uploader → applier → sink of the direction
 * (replica page blobs and points, or a master target during failback), plus the point schedule.
 */
export class MachinePipeline {
  readonly uploader: Uploader;
  readonly applier: Applier;
  readonly scheduler: RecoveryPointScheduler;
  private readonly replica: ReplicaSink;
  /** One master-target sink per failback epoch that still has work. */
  private readonly targets = new Map<DirectionEpoch, MasterTargetSink>();
  private readonly logger: Logger;

  constructor(
    readonly machine: Machine,
    private readonly o: PipelineOptions,
  ) {
    const logger = o.logger.child({ machineId: machine.id });
    this.logger = logger;
    const logOf = (epoch: DirectionEpoch): LogLocation =>
      logLocation(machine.id, epoch.direction === "to-on-premises" ? o.processServerId : undefined);
    this.replica = new ReplicaSink({
      machine,
      store: o.store,
      points: o.points,
      retryTimeUnitMs: o.retryTimeUnitMs,
      logger,
      metrics: o.metrics,
      onPoint: o.onPoint,
      onProcessed: () => this.applier.persistState(),
      apply: o.apply,
      checksumMaps: o.checksumMaps,
    });
    this.applier = new Applier({
      machine,
      store: o.store,
      segmentKeys: o.segmentKeys.lookup,
      retryTimeUnitMs: o.retryTimeUnitMs,
      maxQueueBytes: o.applyQueueBytes,
      batchBytes: o.apply.batchBytes,
      passIntervalMs: o.apply.passIntervalMs,
      receivedSequence: () => o.cache.lastSequence(machine.id),
      logger,
      processServerId: o.processServerId,
      replica: this.replica,
      sinks: { of: (epoch) => this.sinkOf(epoch), retire: (epoch) => this.retire(epoch) },
      logOf,
      stateOf: (direction) => (direction === "to-on-premises" ? failbackStateObjectName(machine.id, o.processServerId) : stateObjectName(machine.id)),
    });
    this.uploader = new Uploader({
      machine,
      cache: o.cache,
      store: o.store,
      maxBytes: o.segment.maxBytes,
      maxDelayMs: o.segment.maxDelayMs,
      codec: o.codec,
      keys: o.segmentKeys,
      retryTimeUnitMs: o.retryTimeUnitMs,
      logger,
      metrics: o.metrics,
      logOf,
      onUploaded: (records) => {
        machine.processedLag.noteUploaded(records, recordBytes);
        this.applier.enqueue(records);
      },
      concurrency: o.uploadConcurrency,
      uploadSlots: o.uploadSlots,
    });
    this.scheduler = new RecoveryPointScheduler({
      machine,
      applier: this.applier,
      points: o.points,
      store: o.store,
      logger,
      failbackLog: () => {
        const reverse = machine.epochs.all().find((e) => e.direction === "to-on-premises");
        return reverse ? logOf(reverse) : undefined;
      },
    });
  }

  private initialised?: Promise<void>;

  /**
   * Starts at once: the uploader needs only the cache, and the applier restores its position from
   * storage in the background (storage may be down while the process server starts).
   */
  start(): void {
    this.uploader.start();
    this.scheduler.apply(this.machine.policy);
    this.initialised ??= this.applier.init().then(
      () => this.applier.start(),
      () => undefined, // only an abort (stop) ends init's retries
    );
  }

  /**
   * Takes a MachineAssignment: the policy, and the direction. A new direction starts after the
   * last record held now (under the append lock, so no record is in two directions); records
   * before it still go where they were headed.
   */
  async assign(a: MachineAssignment): Promise<void> {
    const { machine } = this;
    const change = await machine.appendLock.run(async () => machine.epochs.assign(routeOf(a), this.o.cache.lastSequence(machine.id)));
    machine.policy = a.policy;
    await machine.save();
    if (change === "address") this.targets.get(machine.epochs.current)?.retarget();
    if (change === "direction") {
      const current = machine.epochs.current;
      this.logger.info("replication direction assigned", {
        machineId: machine.id,
        direction: current.direction,
        afterSequence: current.startsAfter,
        masterTarget: current.masterTargetAddress || undefined,
      });
      // An epoch replaced before it held anything may have left a sink behind.
      const live = new Set(machine.epochs.all());
      for (const epoch of [...this.targets.keys()]) if (!live.has(epoch)) await this.retire(epoch);
    }
    this.scheduler.apply(a.policy);
  }

  /** The master target of the current assignment, when the machine fails back. */
  masterTarget(): MasterTargetSink | undefined {
    const current = this.machine.epochs.current;
    return current.direction === "to-on-premises" ? (this.sinkOf(current) as MasterTargetSink) : undefined;
  }

  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.uploader.stop();
    // The applier may be waiting inside a sink: stop both together.
    await Promise.all([this.applier.stop(), this.replica.close(), ...[...this.targets.values()].map((t) => t.close())]);
    this.targets.clear();
    await this.initialised;
    // After the last apply and state write: the maps then cover exactly the persisted position.
    await this.replica.persistChecksums();
  }

  private sinkOf(epoch: DirectionEpoch): ApplySink {
    if (epoch.direction === "to-azure") return this.replica;
    let sink = this.targets.get(epoch);
    if (!sink) {
      sink = new MasterTargetSink({
        machine: this.machine,
        epoch,
        credential: this.o.credential,
        tls: this.o.tls,
        retryTimeUnitMs: this.o.retryTimeUnitMs,
        logger: this.logger,
        metrics: this.o.metrics,
        onProcessed: () => void this.applier.persistState().catch(() => undefined),
        saveFacts: () => this.machine.save(),
        onPoint: this.o.onTargetPoint,
      });
      this.targets.set(epoch, sink);
    }
    return sink;
  }

  private async retire(epoch: DirectionEpoch): Promise<void> {
    const sink = this.targets.get(epoch);
    this.targets.delete(epoch);
    await sink?.close();
  }
}
