import { ApplyCostModel } from "../common/replica/index.js";
import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { Semaphore } from "../common/async/index.js";
import { CredentialVerifier } from "../common/credentials/index.js";
import { CsLink } from "../common/cs-link/index.js";
import { ErrorCode, retryWithBackoff, SrlabError } from "../common/errors/index.js";
import { GrpcServer, unaryCall } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { SegmentKeyRing } from "../common/segment/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import {
  ComponentRole,
  Health,
  ProcessServiceService,
  protoRoot,
  type RecoveryPoint,
  type RegisterResponse,
  type ReplicateOpen,
  type ReplicationStats,
  SiteLocation,
  serviceProtoFiles,
  type WatchCommandsResponse,
  type WriteRecord,
} from "../proto/index.js";
import { type CacheHealth, DiskCache, measureCacheHealth } from "./cache/index.js";
import type { AgentSite } from "./caller-auth.js";
import { Machine, worstHealth } from "./machine.js";
import { MachinePipeline, StorageWatch } from "./pipeline/index.js";
import { type MachineFacts, MachineRegistry } from "./machine-registry.js";
import { ProcessServerMetrics } from "./metrics.js";
import { type ProcessServerOptions, type ProcessServerOptionsInput, processServerOptions } from "./options.js";
import { type PointDocument, PointStore, toRecoveryPoint } from "./points/index.js";
import { admitMachine } from "./machine-admission.js";
import { type HeartbeatReport, heartbeatReport, machineStats } from "./heartbeat-report.js";
import { type ProcessServiceHost, processServiceImplementation } from "./process-service.js";
import { ReplicationService } from "./intake/index.js";
import { isUsableMachineId } from "../common/storage-layout/index.js";

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
  private readonly pipelines = new Map<string, MachinePipeline>();
  private readonly machineRegistry: MachineRegistry;
  /** Segments in flight across this server's machines (options.upload.total). */
  private readonly uploadSlots: Semaphore;
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
  private cacheState: CacheHealth = { health: Health.HEALTH_NORMAL, issues: [], freePercent: 100, capacityBytes: 0 };
  private cacheTimer?: NodeJS.Timeout;
  private readonly abort = new AbortController();
  private started = false;
  /** Streams are refused until registration, storage and resumed machines are in place. */
  private accepting = false;

  constructor(options: ProcessServerOptionsInput | ProcessServerOptions, logger?: Logger) {
    this.options = processServerOptions.parse(options);
    this.logger = logger ?? createLogger(`process-server/${this.options.name}`, this.options.log);
    this.machineRegistry = new MachineRegistry(join(this.options.dataDir, "machines"));
    this.uploadSlots = new Semaphore(this.options.upload.total);
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

      const host = this.serviceHost();
      this.replication = new ReplicationService(host);
      this.verifier.onRevoked((ids) => this.replication?.revoke(ids));
      this.grpcServer = new GrpcServer({
        host: o.listen.host,
        port: o.listen.port,
        tls,
        services: [
          {
            name: SERVICE_NAME,
            definition: ProcessServiceService,
            implementation: processServiceImplementation(host, this.replication),
          },
        ],
        reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
        logger: this.logger,
      });
      await this.grpcServer.start();

      this.link = new CsLink({
        ...o.configServer,
        configFile: o.configFile,
        verifier: this.verifier,
        segmentKeys: this.segmentKeys,
        role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
        name: o.name,
        advertisedAddress: o.advertisedAddress ?? this.dialableAddress(),
        metricsUrl: () => this.metricsUrl,
        location: o.location === "azure" ? SiteLocation.SITE_LOCATION_AZURE : SiteLocation.SITE_LOCATION_ON_PREMISES,
        tls,
        logger: this.logger,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        report: () => this.report(),
      });
      this.registration = await this.link.register();
      const storage = this.registration.storage;
      if (!storage?.kind) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no storage settings");
      if (!this.segmentKeys.currentKeyId) {
        throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no usable segment key");
      }
      this.blobStore = createBlobStore(
        {
          kind: storage.kind as "azure" | "directory",
          connectionString: storage.connectionString || undefined,
          container: storage.container || undefined,
          directory: storage.directory || undefined,
        },
        this.logger,
      );
      const store = this.blobStore;
      // Warning at once while storage is unreachable, Critical once the outage reaches ASR's 15-minute mark.
      StorageWatch.of(store, { probeIntervalMs: o.storageProbeMs, criticalAfterMs: 15 * this.retryTimeUnitMs, logger: this.logger });
      // A storage that restarted may have lost what it acknowledged: a checksum resync of every
      // machine makes the replicas equal their sources again (docs/replication-model.md).
      StorageWatch.of(store).onRestarted((reason) => {
        for (const p of this.pipelines.values()) p.machine.resyncReason ??= `${reason}; a checksum resync verifies the replica`;
      });
      await retryWithBackoff(() => store.init(), {
        timeUnitMs: this.retryTimeUnitMs,
        signal: this.abort.signal,
        logger: this.logger,
        operation: "storage initialisation",
      });
      this.points = new PointStore(store);

      await this.resumeMachines();
      this.accepting = true;
      await this.refreshCacheHealth();
      this.cacheTimer = setInterval(() => void this.refreshCacheHealth(), o.heartbeatIntervalMs);
      this.cacheTimer.unref();
      this.link.start((command) => this.handleCommand(command));
      this.grpcServer.setServing(true);
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
    if (this.cacheTimer) clearInterval(this.cacheTimer);
    this.grpcServer?.setServing(false);
    this.replication?.closeAll();
    await this.grpcServer?.stop(2_000);
    await this.link?.stop();
    await Promise.all([...this.pipelines.values()].map((p) => p.stop()));
    this.pipelines.clear();
    await this.cache?.close();
    if (this.blobStore) StorageWatch.of(this.blobStore).stop();
    await this.blobStore?.close();
    await this.metricsServer?.stop();
    this.logger.info("process server stopped");
  }

  /** Restarts the pipeline of every machine known from an earlier run (facts or cache). */
  private async resumeMachines(): Promise<void> {
    const cache = this.cache!;
    const facts = new Map<string, MachineFacts>();
    for (const f of await this.machineRegistry.loadAll()) facts.set(f.machineId, f);
    for (const id of cache.machines()) if (!facts.has(id)) facts.set(id, { machineId: id, disks: [], uploadedSequence: 0 });
    for (const f of facts.values()) {
      // The cache persists its released position too; it is never ahead of what was uploaded.
      f.uploadedSequence = Math.max(f.uploadedSequence, cache.releasedSequence(f.machineId));
      if (cache.lastSequence(f.machineId) < f.uploadedSequence) {
        // The cache lost its files: continue the stream after what storage holds.
        await cache.setBaseSequence(f.machineId, f.uploadedSequence);
      }
      this.startPipeline(new Machine(f, this.machineRegistry));
    }
  }

  private startPipeline(machine: Machine): MachinePipeline {
    const o = this.options;
    const reg = this.registration!;
    const pipeline = new MachinePipeline(machine, {
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
      apply: { ...o.apply, cost: o.apply.blockWise ? this.applyCost : undefined },
      logger: this.logger,
      metrics: this.metrics,
      onPoint: (doc) => this.reportPoint(toRecoveryPoint(doc)),
      onTargetPoint: (point) => this.reportPoint(point),
      processServerId: reg.componentId,
      credential: () => this.link!.credential,
      tls: o.insecure ? undefined : o.tls,
    });
    this.pipelines.set(machine.id, pipeline);
    pipeline.start();
    return pipeline;
  }

  /** Admits the machine of a Replicate stream's open (see machine-admission.ts). */
  private openMachine(open: ReplicateOpen, site: AgentSite): Promise<Machine> {
    const self = this;
    return admitMachine(
      {
        name: this.options.name,
        logger: this.logger,
        get cache() {
          return self.cache!;
        },
        get store() {
          return self.blobStore!;
        },
        known: (machineId) => this.pipelines.get(machineId)?.machine,
        start: (machineId) => this.startPipeline(new Machine({ machineId, disks: [], uploadedSequence: 0 }, this.machineRegistry)).machine,
      },
      open,
      site,
    );
  }

  private stats(machine: Machine): ReplicationStats {
    return machineStats(this.cache!, machine, this.pipelines.get(machine.id)?.uploader.pendingBytesEstimate ?? 0);
  }

  private report(): HeartbeatReport {
    const self = this;
    return heartbeatReport({
      get cache() {
        return self.cache;
      },
      cacheHealth: this.cacheState,
      metrics: this.metrics,
      machines: () => [...this.pipelines.values()].map((p) => p.machine),
      pendingBytes: (machine) => this.pipelines.get(machine.id)?.uploader.pendingBytesEstimate ?? 0,
      storageIssues: () => (this.blobStore ? StorageWatch.of(this.blobStore).issues() : []),
    });
  }

  private appended(machine: Machine, records: WriteRecord[], bytes: number): void {
    const payload = records.reduce((n, r) => n + r.data.length, 0);
    machine.receivedRate.record(payload);
    machine.receivedBytesTotal += payload;
    this.metrics.receivedBytes.inc({ machine_id: machine.id }, payload);
    this.metrics.receivedRecords.inc({ machine_id: machine.id }, records.length);
    this.pipelines.get(machine.id)?.uploader.noteAppended(bytes);
  }

  private async drain(machine: Machine, apply: boolean, signal: AbortSignal): Promise<void> {
    const target = this.cache!.lastSequence(machine.id);
    this.pipelines.get(machine.id)?.uploader.flush();
    await machine.uploaded.waitFor(target, signal);
    if (apply) await machine.processed.waitFor(target, signal);
  }

  private async refreshCacheHealth(): Promise<void> {
    if (!this.cache) return;
    try {
      this.cacheState = await measureCacheHealth({
        dir: this.cacheDir,
        usedBytes: this.cache.usedBytes(),
        capacityBytes: this.options.cache.capacityBytes,
        warningFreePercent: this.options.cache.warningFreePercent,
        criticalFreePercent: this.options.cache.criticalFreePercent,
        aboveHighWater: this.cache.isAboveHighWater(),
      });
    } catch (err) {
      this.logger.warn("cache health check failed", { error: (err as Error).message });
    }
  }

  private async handleCommand(command: WatchCommandsResponse): Promise<object | undefined> {
    const c = command.command;
    switch (c?.$case) {
      case "assignment": {
        const a = c.value;
        if (!isUsableMachineId(a.machineId)) throw new Error(`machine id "${a.machineId}" is not usable`);
        let pipeline = this.pipelines.get(a.machineId);
        if (!pipeline) pipeline = this.startPipeline(new Machine({ machineId: a.machineId, disks: [], uploadedSequence: 0 }, this.machineRegistry));
        await pipeline.assign(a);
        const epoch = pipeline.machine.epochs.current;
        return { machineId: a.machineId, policy: a.policy?.name ?? "", direction: epoch.direction, directionAfterSequence: epoch.startsAfter };
      }
      default:
        throw new Error(`process server does not handle command ${c?.$case ?? "(empty)"}`);
    }
  }

  /** Reports a point to the CS in the background; the CS treats repeats as one point. */
  private reportPoint(point: RecoveryPoint): void {
    const link = this.link;
    if (!link) return;
    retryWithBackoff(() => unaryCall(link.client, link.client.reportRecoveryPoint, { recoveryPoint: point }, link.credential), {
      timeUnitMs: this.retryTimeUnitMs,
      signal: this.abort.signal,
      logger: this.logger,
      operation: `report of recovery point ${point.recoveryPointId}`,
    }).catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.logger.error("recovery point not reported", { pointId: point.recoveryPointId, error: (err as Error).message });
    });
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

  /** What the ProcessService handlers and the Replicate stream use of the server. */
  private serviceHost(): ProcessServiceHost {
    const self = this;
    return {
      logger: this.logger,
      metrics: this.metrics,
      inboxMessages: this.options.intake.inboxMessages,
      get cache(): DiskCache {
        if (!self.cache) throw new SrlabError(ErrorCode.UNAVAILABLE, "process server is starting");
        return self.cache;
      },
      verifier: (): CredentialVerifier => {
        if (!this.accepting || !this.verifier.ready) throw new SrlabError(ErrorCode.UNAVAILABLE, "process server is still registering with the configuration server");
        return this.verifier;
      },
      componentId: () => this.componentId,
      openMachine: (open: ReplicateOpen, site: AgentSite) => this.openMachine(open, site),
      appended: (machine: Machine, records: WriteRecord[], bytes: number) => this.appended(machine, records, bytes),
      cacheHealth: () => this.cacheState.health,
      store: (): BlobStore => this.blobStore!,
      machine: (machineId: string): Machine => {
        const p = this.pipelines.get(machineId);
        if (!p) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `process server ${this.options.name} does not replicate machine ${machineId}`);
        return p.machine;
      },
      drain: (machine: Machine, apply: boolean, signal: AbortSignal) => this.drain(machine, apply, signal),
      masterTarget: (machine: Machine) => this.pipelines.get(machine.id)?.masterTarget(),
      stats: (machine: Machine) => this.stats(machine),
      status: (machine: Machine) => {
        const issues = machine.currentIssues();
        return { health: worstHealth(issues), issues };
      },
    };
  }
}
