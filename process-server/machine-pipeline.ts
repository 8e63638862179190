import type { Logger } from "../common/logger.js";
import type { CodecName } from "../common/segment/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { Applier } from "./applier.js";
import type { DiskCache } from "./cache/index.js";
import type { Machine } from "./machine.js";
import type { ProcessServerMetrics } from "./metrics.js";
import type { PointDocument, PointStore } from "./point-store.js";
import { RecoveryPointScheduler } from "./recovery-points.js";
import { Uploader } from "./uploader.js";

export interface PipelineOptions {
  cache: DiskCache;
  store: BlobStore;
  points: PointStore;
  segment: { maxBytes: number; maxDelayMs: number };
  codec: CodecName;
  segmentKey: Buffer;
  segmentKeyId: string;
  retryTimeUnitMs: number;
  applyQueueBytes: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  onPoint: (doc: PointDocument) => void;
}

/** The per-machine stages wired together: cache → uploader → applier (→ points), plus the point schedule. */
export class MachinePipeline {
  readonly uploader: Uploader;
  readonly applier: Applier;
  readonly scheduler: RecoveryPointScheduler;

  constructor(
    readonly machine: Machine,
    o: PipelineOptions,
  ) {
    const logger = o.logger.child({ machineId: machine.id });
    this.applier = new Applier({
      machine,
      store: o.store,
      points: o.points,
      segmentKeys: (keyId) => (keyId === o.segmentKeyId ? o.segmentKey : undefined),
      retryTimeUnitMs: o.retryTimeUnitMs,
      maxQueueBytes: o.applyQueueBytes,
      logger,
      metrics: o.metrics,
      onPoint: o.onPoint,
    });
    this.uploader = new Uploader({
      machine,
      cache: o.cache,
      store: o.store,
      maxBytes: o.segment.maxBytes,
      maxDelayMs: o.segment.maxDelayMs,
      codec: o.codec,
      key: o.segmentKey,
      keyId: o.segmentKeyId,
      retryTimeUnitMs: o.retryTimeUnitMs,
      logger,
      metrics: o.metrics,
      onUploaded: (records) => this.applier.enqueue(records),
    });
    this.scheduler = new RecoveryPointScheduler({ machine, applier: this.applier, points: o.points, store: o.store, logger });
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

  async stop(): Promise<void> {
    this.scheduler.stop();
    await this.uploader.stop();
    await this.applier.stop();
    await this.initialised;
  }
}
