import { ApplyCostModel } from "../common/replica/index.js";
import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { Semaphore } from "../common/async/index.js";
import { CredentialVerifier } from "../common/credentials/index.js";
import { CsLink } from "../common/cs-link/index.js";
import { storageKinds } from "../common/enum-names/index.js";
import { ErrorCode, retryWithBackoff, SrlabError } from "../common/errors/index.js";
import { GrpcServer, unaryCall } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, forgetSeries, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { SegmentKeyRing } from "../common/segment/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import {
  ComponentRole,
  Health,
  ProcessServiceService,
  protoRoot,
  type RecoveryPoint,
  type MachineHandover,
  type RegisterResponse,
  ReleaseMode,
  type ReplicateOpen,
  type ReplicationStats,
  SiteLocation,
  serviceProtoFiles,
  type WatchCommandsResponse,
  type WriteRecord,
} from "../proto/index.js";
import { deserializeReplicateRequest } from "../common/wire/index.js";
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
import { factsOf, handoverOf } from "./machine-handover.js";
import { isUsableMachineId, logPrefix, parseSegmentObjectName } from "../common/storage-layout/index.js";

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
  /** Machines released (or being released) to another process server or to nobody: streams refused. */
  private readonly released = new Set<string>();
  /** First pipelines being set up (newPipeline), by machine. */
  private readonly starting = new Map<string, Promise<MachinePipeline>>();
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
      const kind = storageKinds.nameOf(storage?.kind ?? 0);
      if (!storage || !kind) throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no usable storage settings");
      if (!this.segmentKeys.currentKeyId) {
        throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, "the configuration server sent no usable segment key");
      }
      this.blobStore = createBlobStore(
        {
          kind,
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
      checksumMaps: { dir: join(o.dataDir, "checksum-maps"), persistIntervalMs: 30_000 },
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

  /**
   * The pipeline of a machine this process server meets for the first time (an assignment and
   * the agent's open may race: both get the same one). When storage already holds a log for it —
   * protection disabled with --keep-replica and enabled again — the stream continues after that
   * log instead of numbering from 1 over it.
   */
  private newPipeline(machineId: string): Promise<MachinePipeline> {
    let starting = this.starting.get(machineId);
    if (!starting) {
      starting = (async () => {
        const after = await this.storedLogEnd(machineId);
        const existing = this.pipelines.get(machineId);
        if (existing) return existing;
        const machine = new Machine({ machineId, disks: [], uploadedSequence: after }, this.machineRegistry);
        if (after > 0 && this.cache!.lastSequence(machineId) < after) {
          await this.cache!.setBaseSequence(machineId, after);
          machine.processed.advance(after);
          this.logger.info("machine continues after the log already in storage", { machineId, afterSequence: after });
        }
        return this.startPipeline(machine);
      })().finally(() => this.starting.delete(machineId));
      this.starting.set(machineId, starting);
    }
    return starting;
  }

  /** Highest sequence of the machine's log segments in storage (0 when it has none). */
  private async storedLogEnd(machineId: string): Promise<number> {
    let last = 0;
    for (const o of await this.blobStore!.listObjects(logPrefix(machineId))) {
      const parsed = parseSegmentObjectName(o.name);
      if (parsed?.machineId === machineId) last = Math.max(last, parsed.lastSequence);
    }
    return last;
  }

  /** Admits the machine of a Replicate stream's open (see machine-admission.ts). */
  private openMachine(open: ReplicateOpen, site: AgentSite): Promise<Machine> {
    if (this.released.has(open.machineId)) {
      return Promise.reject(
        new SrlabError(ErrorCode.UNAVAILABLE, `process server ${this.options.name} no longer replicates machine ${open.machineId}; waiting for its new assignment`),
      );
    }
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
        start: async (machineId) => (await this.newPipeline(machineId)).machine,
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
        // Assigned here again (protection re-enabled, or switched back): streams are welcome.
        this.released.delete(a.machineId);
        const pipeline = this.pipelines.get(a.machineId) ?? (await this.newPipeline(a.machineId));
        await pipeline.assign(a);
        const epoch = pipeline.machine.epochs.current;
        return { machineId: a.machineId, policy: a.policy?.name ?? "", direction: epoch.direction, directionAfterSequence: epoch.startsAfter };
      }
      case "releaseMachine":
        return this.releaseMachine(c.value.machineId, c.value.mode);
      case "adoptMachine": {
        if (!c.value.handover) throw new Error("adopt names no machine");
        return this.adoptMachine(c.value.handover);
      }
      default:
        throw new Error(`process server does not handle command ${c?.$case ?? "(empty)"}`);
    }
  }

  /**
   * Lets go of a machine: its stream is closed and refused from now on; in handover mode every
   * record in the cache (everything acknowledged, and whatever arrived unacknowledged) is uploaded
   * and applied first. Then the pipeline stops and the cache, registry file and metric series of
   * the machine go: it is no longer reported anywhere.
   */
  private async releaseMachine(machineId: string, mode: ReleaseMode): Promise<object> {
    if (mode !== ReleaseMode.RELEASE_MODE_HANDOVER && mode !== ReleaseMode.RELEASE_MODE_DISCARD) throw new Error("release needs a mode");
    const pipeline = this.pipelines.get(machineId);
    this.released.add(machineId);
    this.replication?.closeMachine(machineId, `machine ${machineId} is being released by process server ${this.options.name}`);
    if (!pipeline) {
      await this.cache!.forget(machineId);
      await this.machineRegistry.remove(machineId);
      await forgetSeries(this.metricsRegistry, "machine_id", machineId);
      return { machineId, known: false };
    }
    const machine = pipeline.machine;
    // An append in flight finishes under the lock; the stream is gone, so nothing follows it.
    const last = await machine.appendLock.run(async () => this.cache!.lastSequence(machineId));
    let handover: MachineHandover | undefined;
    if (mode === ReleaseMode.RELEASE_MODE_HANDOVER) {
      if (machine.failingBack) throw new Error(`machine ${machineId} fails back through this process server; it cannot be handed over`);
      this.logger.info("draining machine for handover", { machineId, throughSequence: last });
      await this.drain(machine, true, this.abort.signal);
      await machine.save();
      handover = handoverOf(machine.facts(), this.componentId);
    }
    this.pipelines.delete(machineId);
    await pipeline.stop();
    await this.cache!.forget(machineId);
    await this.machineRegistry.remove(machineId);
    await forgetSeries(this.metricsRegistry, "machine_id", machineId);
    this.logger.info("machine released", { machineId, mode: ReleaseMode[mode], uploadedSequence: machine.uploaded.value });
    return { machineId, known: true, lastSequence: last, uploadedSequence: machine.uploaded.value, handover };
  }

  /** Takes a machine another process server drained: its stream continues after the handed-over sequence. */
  private async adoptMachine(handover: MachineHandover): Promise<object> {
    const machineId = handover.machineId;
    if (!isUsableMachineId(machineId)) throw new Error(`machine id "${machineId}" is not usable`);
    const existing = this.pipelines.get(machineId);
    if (existing) {
      if (this.cache!.lastSequence(machineId) > handover.uploadedSequence) {
        throw new Error(`process server ${this.options.name} already holds machine ${machineId} beyond sequence ${handover.uploadedSequence}`);
      }
      this.pipelines.delete(machineId);
      await existing.stop();
    }
    const facts = factsOf(handover);
    await this.cache!.forget(machineId);
    await this.cache!.setBaseSequence(machineId, facts.uploadedSequence);
    const machine = new Machine(facts, this.machineRegistry);
    // Everything up to here is uploaded and applied (the old process server drained it).
    machine.processed.advance(facts.uploadedSequence);
    await machine.save();
    this.released.delete(machineId);
    this.startPipeline(machine);
    this.logger.info("machine adopted", { machineId, from: handover.fromProcessServerId, continuesAfter: facts.uploadedSequence });
    return { machineId, continuesAfter: facts.uploadedSequence };
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
