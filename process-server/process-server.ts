import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { Semaphore } from "../common/async/index.js";
import { BufferPool } from "../common/bytes/index.js";
import { CredentialVerifier } from "../common/credentials/index.js";
import { CsLink } from "../common/cs-link/index.js";
import { storageKinds } from "../common/enum-names/index.js";
import { ErrorCode, retryWithBackoff, SrlabError } from "../common/errors/index.js";
import { GrpcServer } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, forgetSeries, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { ApplyCostModel, ReplicaBlockCache } from "../common/replica/index.js";
import { SegmentKeyRing } from "../common/segment/index.js";
import { type BlobStore, createBlobStore, MAX_PAGE_WRITE } from "../common/storage/index.js";
import { deserializeReplicateRequest } from "../common/wire/index.js";
import { ComponentRole, ProcessServiceService, protoRoot, type RecoveryPoint, type RegisterResponse, SiteLocation, serviceProtoFiles } from "../proto/index.js";
import { CacheHealthWatch, DiskCache } from "./cache/index.js";
import { type HeartbeatReport, heartbeatReport } from "./heartbeat-report.js";
import { ReplicationService } from "./intake/index.js";
import { type CommandHost, handleCommand } from "./machine-commands.js";
import { MachinePipelines } from "./machine-pipelines.js";
import { MachineRegistry } from "./machine-registry.js";
import type { Machine } from "./machine.js";
import { ProcessServerMetrics } from "./metrics.js";
import { type ProcessServerOptions, type ProcessServerOptionsInput, processServerOptions } from "./options.js";
import { MachinePipeline, removeChecksumMaps, StorageWatch } from "./pipeline/index.js";
import { reportPoint } from "./point-reports.js";
import { PointStore, toRecoveryPoint } from "./points/index.js";
import { processServiceImplementation } from "./process-service.js";
import { serviceHost } from "./service-host.js";

const SERVICE_NAME = "srlab.v1.ProcessService";

/** What the process server writes to options.readyFile once it serves. */
export interface ProcessServerReady {
  pid: number;
  grpcAddress: string;
  metricsUrl: string;
  componentId: string;
}

/**
 * The replication gateway (DESIGN §1, docs/replication-model.md steps 2–6): receives each
 * machine's write stream into an fsynced disk cache, uploads it as encrypted log segments, applies
 * it to the replica page blobs and makes recovery points. It registers with the configuration
 * server, which hands it storage settings and keys, and reports per-machine RPO in heartbeats.
 * In Azure it also carries failback: a machine assigned AZURE_TO_ON_PREMISES is applied to its
 * master target instead of the replica (docs/replication-model.md, "Failback").
 */
export class ProcessServer {
  readonly options: ProcessServerOptions;
  private readonly logger: Logger;
  private readonly metricsRegistry = createRegistry("process-server");
  private readonly metrics = new ProcessServerMetrics(this.metricsRegistry);
  /** Call and byte costs of the one storage account, learnt from every replica apply. */
  private readonly applyCost = new ApplyCostModel();
  /** Block buffers of replica applies, reused across this server's machines (fresh ones fault in page by page). */
  private readonly applyBuffers = new BufferPool(MAX_PAGE_WRITE);
  private readonly applyCache: ReplicaBlockCache;
  private readonly pipelines: MachinePipelines;
  private readonly machineRegistry: MachineRegistry;
  /** Segments in flight across this server's machines (options.upload.total). */
  private readonly uploadSlots: Semaphore;
  private readonly cacheHealth: CacheHealthWatch;
  private cache?: DiskCache;
  private blobStore?: BlobStore;
  private points?: PointStore;
  private grpcServer?: GrpcServer;
  private metricsServer?: MetricsServer;
  private link?: CsLink;
  private registration?: RegisterResponse;
  /** Checks callers: the configuration server's public key and revocation list, both from the link. */
  private readonly verifier = new CredentialVerifier();
  /** Segment keys from the configuration server: registration, then every heartbeat. */
  private readonly segmentKeys = new SegmentKeyRing();
  private replication?: ReplicationService;
  private readonly abort = new AbortController();
  private started = false;
  /** Streams are refused until registration, storage and resumed machines are in place. */
  private accepting = false;

  constructor(options: ProcessServerOptionsInput | ProcessServerOptions, logger?: Logger) {
    this.options = processServerOptions.parse(options);
    this.logger = logger ?? createLogger(`process-server/${this.options.name}`, this.options.log);
    this.machineRegistry = new MachineRegistry(join(this.options.dataDir, "machines"));
    this.uploadSlots = new Semaphore(this.options.upload.total);
    this.applyCache = new ReplicaBlockCache(this.options.apply.blockCacheBytes);
    this.metrics.applyBlockCacheSource = () => this.applyCache.bytes;
    const c = this.options.cache;
    this.cacheHealth = new CacheHealthWatch({
      dir: this.cacheDir,
      capacityBytes: c.capacityBytes,
      warningFreePercent: c.warningFreePercent,
      criticalFreePercent: c.criticalFreePercent,
      logger: this.logger,
    });
    const self = this;
    this.pipelines = new MachinePipelines({
      name: this.options.name,
      logger: this.logger,
      metrics: this.metrics,
      registry: this.machineRegistry,
      get cache() {
        return self.cache!;
      },
      get store() {
        return self.blobStore!;
      },
      create: (machine) => this.createPipeline(machine),
      forgetChecksumMaps: (machineId) => removeChecksumMaps(this.checksumMapsDir, machineId),
    });
  }

  get grpcAddress(): string {
    if (!this.grpcServer) throw new Error("process server is not started");
    return this.grpcServer.address;
  }

  get metricsUrl(): string {
    if (!this.metricsServer) throw new Error("process server is not started");
    return this.metricsServer.url;
  }

  get componentId(): string {
    return this.registration?.componentId ?? "";
  }

  private get cacheDir(): string {
    return this.options.cache.dir ?? join(this.options.dataDir, "cache");
  }

  /** The replica checksum maps of every machine (pipeline/checksum-map-files.ts). */
  private get checksumMapsDir(): string {
    return join(this.options.dataDir, "checksum-maps");
  }

  private get retryTimeUnitMs(): number {
    return this.options.retryTimeUnitMs ?? (this.registration?.timeUnitSeconds ? this.registration.timeUnitSeconds * 1000 : 60_000);
  }

  async start(): Promise<void> {
    if (this.started) throw new Error("process server already started");
    this.started = true;
    const o = this.options;
    const tls = o.insecure ? undefined : o.tls;
    if (!o.insecure && !tls) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "set tls (caFile, certFile, keyFile) or insecure: true");
    try {
      await mkdir(o.dataDir, { recursive: true });
      this.cache = await DiskCache.open(this.cacheDir, { highWaterBytes: o.cache.highWaterBytes, logger: this.logger });
      this.metricsServer = await startMetricsServer({ host: o.metrics.host, port: o.metrics.port, registry: this.metricsRegistry, logger: this.logger });
      await this.startGrpc();
      this.link = this.newLink();
      this.registration = await this.link.register();
      this.blobStore = this.storageFromRegistration(this.registration);
      const store = this.blobStore;
      // Warning at once while storage is unreachable, Critical once the outage reaches ASR's 15-minute mark.
      const watch = StorageWatch.of(store, {
        probeIntervalMs: o.storageProbeMs,
        criticalAfterMs: 15 * this.retryTimeUnitMs,
        idleProbeMs: o.storageIdleProbeMs,
        logger: this.logger,
      });
      // A storage that restarted may have lost what it acknowledged: a checksum resync of every
      // machine makes the replicas equal their sources again (docs/replication-model.md).
      StorageWatch.of(store).onRestarted((reason) => {
        for (const machine of this.pipelines.machines()) machine.resyncReason ??= `${reason}; a checksum resync verifies the replica`;
      });
      await retryWithBackoff(() => store.init(), {
        timeUnitMs: this.retryTimeUnitMs,
        signal: this.abort.signal,
        logger: this.logger,
        operation: "storage initialisation",
      });
      this.points = new PointStore(store);
      // From here on a restart of storage is noticed even while nothing is uploaded.
      watch.start();

      await this.pipelines.resume();
      this.accepting = true;
      await this.cacheHealth.start(this.cache, o.heartbeatIntervalMs);
      this.link.start((command) => handleCommand(this.commandHost(), command));
      this.grpcServer!.setServing(true);
      if (o.readyFile) await this.writeReadyFile(o.readyFile);
      this.logger.info("process server ready", { grpcAddress: this.grpcAddress, componentId: this.componentId, machines: this.pipelines.size });
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.accepting = false;
    this.abort.abort(new Error("process server stopping"));
    this.cacheHealth.stop();
    this.grpcServer?.setServing(false);
    this.replication?.closeAll();
    await this.grpcServer?.stop(2_000);
    await this.link?.stop();
    await this.pipelines.stopAll();
    await this.cache?.close();
    if (this.blobStore) StorageWatch.of(this.blobStore).stop();
    await this.blobStore?.close();
    await this.metricsServer?.stop();
    this.logger.info("process server stopped");
  }

  /** Serves ProcessService (not yet SERVING: that waits for registration and storage). */
  private async startGrpc(): Promise<void> {
    const o = this.options;
    const self = this;
    const host = serviceHost({
      name: o.name,
      logger: this.logger,
      metrics: this.metrics,
      inboxMessages: o.intake.inboxMessages,
      pipelines: this.pipelines,
      get cache() {
        return self.cache;
      },
      get store() {
        return self.blobStore;
      },
      get accepting() {
        return self.accepting;
      },
      verifier: this.verifier,
      componentId: () => this.componentId,
      cacheHealth: () => this.cacheHealth.state.health,
    });
    this.replication = new ReplicationService(host);
    this.verifier.onRevoked((ids) => this.replication?.revoke(ids));
    this.grpcServer = new GrpcServer({
      host: o.listen.host,
      port: o.listen.port,
      tls: o.insecure ? undefined : o.tls,
      services: [
        {
          name: SERVICE_NAME,
          // Batches decode with their payloads as views of the received message (no copy).
          definition: {
            ...ProcessServiceService,
            replicate: { ...ProcessServiceService.replicate, requestDeserialize: deserializeReplicateRequest },
          },
          implementation: processServiceImplementation(host, this.replication),
        },
      ],
      reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
      logger: this.logger,
    });
    await this.grpcServer.start();
  }

  /** The link to the configuration server: registration, heartbeats with report(), commands. */
  private newLink(): CsLink {
    const o = this.options;
    return new CsLink({
      ...o.configServer,
      configFile: o.configFile,
      verifier: this.verifier,
      segmentKeys: this.segmentKeys,
      role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
      name: o.name,
      advertisedAddress: o.advertisedAddress ?? this.dialableAddress(),
      metricsUrl: () => this.metricsUrl,
      location: o.location === "azure" ? SiteLocation.SITE_LOCATION_AZURE : SiteLocation.SITE_LOCATION_ON_PREMISES,
      tls: o.insecure ? undefined : o.tls,
      logger: this.logger,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      report: () => this.report(),
    });
  }

  /** The blob store the configuration server's storage settings name (not initialised yet). */
  private storageFromRegistration(registration: RegisterResponse): BlobStore {
    const storage = registration.storage;
    const kind = storageKinds.nameOf(storage?.kind ?? 0);
    if (!storage || !kind) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no usable storage settings");
    if (!this.segmentKeys.currentKeyId) {
      throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no usable segment key");
    }
    return createBlobStore(
      {
        kind,
        connectionString: storage.connectionString || undefined,
        container: storage.container || undefined,
        directory: storage.directory || undefined,
      },
      this.logger,
    );
  }

  /** A machine's pipeline with this server's options (MachinePipelines starts and keeps it). */
  private createPipeline(machine: Machine): MachinePipeline {
    const o = this.options;
    return new MachinePipeline(machine, {
      cache: this.cache!,
      store: this.blobStore!,
      points: this.points!,
      segment: o.segment,
      uploadConcurrency: o.upload.perMachine,
      uploadSlots: this.uploadSlots,
      codec: o.codec,
      segmentKeys: this.segmentKeys,
      retryTimeUnitMs: this.retryTimeUnitMs,
      applyQueueBytes: o.applyQueueBytes,
      apply: { ...o.apply, cost: o.apply.blockWise ? this.applyCost : undefined, buffers: this.applyBuffers, blockCache: this.applyCache },
      checksumMaps: { dir: this.checksumMapsDir, persistIntervalMs: 30_000 },
      logger: this.logger,
      metrics: this.metrics,
      onPoint: (doc) => this.reportPoint(toRecoveryPoint(doc)),
      onTargetPoint: (point) => this.reportPoint(point),
      processServerId: this.registration!.componentId,
      credential: () => this.link!.credential,
      tls: o.insecure ? undefined : o.tls,
    });
  }

  private commandHost(): CommandHost {
    return {
      name: this.options.name,
      logger: this.logger,
      cache: this.cache!,
      registry: this.machineRegistry,
      pipelines: this.pipelines,
      signal: this.abort.signal,
      componentId: () => this.componentId,
      closeStream: (machineId: string, reason: string) => this.replication?.closeMachine(machineId, reason),
      forgetSeries: async (machineId: string) => {
        await forgetSeries(this.metricsRegistry, "machine_id", machineId);
      },
      forgetChecksumMaps: (machineId: string) => removeChecksumMaps(this.checksumMapsDir, machineId),
    };
  }

  private report(): HeartbeatReport {
    return heartbeatReport({
      cache: this.cache,
      cacheHealth: this.cacheHealth.state,
      metrics: this.metrics,
      machines: () => this.pipelines.machines(),
      pendingBytes: (machine) => this.pipelines.pendingBytes(machine),
      storageIssues: () => (this.blobStore ? StorageWatch.of(this.blobStore).issues() : []),
    });
  }

  private reportPoint(point: RecoveryPoint): void {
    if (this.link) reportPoint(this.link, point, { retryTimeUnitMs: this.retryTimeUnitMs, signal: this.abort.signal, logger: this.logger });
  }

  private dialableAddress(): string {
    const host = this.options.listen.host;
    const wildcard = host === "0.0.0.0" || host === "::" || host === "[::]";
    return `${wildcard ? hostname() : host}:${this.grpcServer!.port}`;
  }

  private async writeReadyFile(path: string): Promise<void> {
    const ready: ProcessServerReady = { pid: process.pid, grpcAddress: this.grpcAddress, metricsUrl: this.metricsUrl, componentId: this.componentId };
    await writeFile(path, `${JSON.stringify(ready)}\n`);
  }
}
