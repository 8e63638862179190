import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { CsLink } from "../common/cs-link/index.js";
import { storageKinds } from "../common/enum-names/index.js";
import { type ClientTls, GrpcServer } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import {
  type AssignmentResult,
  ComponentRole,
  type Disk,
  type DiskCreatedResult,
  type DiskDroppedResult,
  Health,
  type MachineAssignment,
  protoRoot,
  type RegisterResponse,
  ReplicationDirection,
  serviceProtoFiles,
  SiteLocation,
  type UnprotectResult,
} from "../proto/index.js";
import { registerAgentMetrics } from "./agent-metrics.js";
import { AgentCommands } from "./commands.js";
import type { DiskBackend } from "./disk-backend.js";
import { GrpcProcessServer } from "./grpc-process-server.js";
import { LocalMachine } from "./local-machine.js";
import { NbdServer } from "./nbd/index.js";
import { type MobilityAgentInput, type MobilityAgentOptions, mobilityAgentOptions } from "./options.js";
import { PageBlobDisk } from "./page-blob-disk.js";
import type { ProcessServerPort } from "./process-server-port.js";
import { machineHealth, machineReport } from "./report.js";
import { ReplicationClient } from "./replication-client.js";

export interface MobilityAgentDeps {
  logger?: Logger;
  /** Replaces the gRPC process-server connection (tests). */
  connectProcessServer?: (address: string, credential: string) => ProcessServerPort;
}

export interface NbdUris {
  index: number;
  uri: string;
  unixUri: string;
}

const BITMAP_TICK_MS = 1_000;

/**
 * The mobility service of one protected machine: serves its disks over NBD, captures every write
 * into one per-machine sequence, and streams it to the assigned process server. On premises the
 * disks are image files; with `location: azure` (a failed-over machine, for failback) they are
 * the page blobs the configuration server names at registration.
 */
export class MobilityAgent {
  readonly options: MobilityAgentOptions;
  readonly logger: Logger;
  private local?: LocalMachine;
  private nbd?: NbdServer;
  private csLink?: CsLink;
  private replication?: ReplicationClient;
  private commands?: AgentCommands;
  private metrics?: MetricsServer;
  private grpc?: GrpcServer;
  private tick?: NodeJS.Timeout;
  private machineIdValue = "";
  /** Azure: where the page-blob disks live. */
  private blobStore?: BlobStore;
  /** Azure: the disks as the configuration server described them. */
  private azureDisks: Disk[] = [];

  constructor(
    options: MobilityAgentOptions | MobilityAgentInput,
    private readonly deps: MobilityAgentDeps = {},
  ) {
    this.options = mobilityAgentOptions.parse(options);
    this.logger = deps.logger ?? createLogger("mobility-agent", this.options.log);
  }

  get machineId(): string {
    return this.machineIdValue;
  }

  get nbdUris(): NbdUris[] {
    const nbd = this.nbd;
    if (!nbd || !this.local) return [];
    return this.local.exports.map((e) => ({ index: e.diskIndex, uri: nbd.uri(e.name), unixUri: nbd.unixUri(e.name) }));
  }

  /** host:port of the agent's gRPC endpoint (health and reflection only). */
  get grpcAddress(): string {
    return this.grpc?.address ?? "";
  }

  get metricsUrl(): string {
    return this.metrics?.url ?? "";
  }

  /** The live capture (tests and embedding). */
  get capture() {
    if (!this.local) throw new Error("mobility agent not started");
    return this.local.capture;
  }

  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      // A wrong passphrase or a busy port must not leave listeners holding the process open.
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { options, logger } = this;
    const azure = options.location === "azure";
    mkdirSync(options.dataDir, { recursive: true });

    // The agent offers no RPCs of its own, but like every daemon it answers health and reflection.
    this.grpc = new GrpcServer({
      host: options.listen.host,
      port: options.listen.port,
      tls: options.insecure ? undefined : options.tls,
      services: [],
      reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
      logger,
    });
    await this.grpc.start();

    // In Azure the configuration server names the disks, so registration comes first; on
    // premises the agent describes its disks (with their NBD URIs) when it registers.
    let csLink: CsLink | undefined;
    let registration: RegisterResponse | undefined;
    let backends: DiskBackend[] | undefined;
    if (azure) {
      if (options.disks.length) logger.warn("location is azure: the configured disks are ignored, the configuration server names them");
      csLink = this.linkToConfigServer();
      registration = await csLink.register();
      backends = await this.openAzureDisks(registration);
    }

    const local = LocalMachine.open({
      dataDir: options.dataDir,
      disks: options.disks,
      backends,
      memoryBudgetBytes: options.capture.memoryBudgetBytes,
      metadataBudgetBytes: options.capture.metadataBudgetBytes,
      logger,
    });
    this.local = local;
    this.tick = setInterval(() => local.capture.tick(), BITMAP_TICK_MS);
    this.tick.unref();

    this.nbd = new NbdServer({
      exports: local.exports,
      host: options.nbd.host,
      port: options.nbd.port,
      socketPath: options.nbd.socketPath,
      logger: logger.child({ part: "nbd" }),
    });
    await this.nbd.start();

    const registry = createRegistry("mobility-agent");
    registerAgentMetrics(registry, options.name, local.capture, () => this.replication);
    this.metrics = await startMetricsServer({ host: options.metrics.host, port: options.metrics.port, registry, logger });

    if (!csLink || !registration) {
      csLink = this.linkToConfigServer();
      registration = await csLink.register();
    }
    const link = csLink;
    this.machineIdValue = registration.machineId;
    local.identify(registration.machineId, logger);

    const tls = this.clientTls();
    this.replication = new ReplicationClient({
      capture: local.capture,
      machineId: registration.machineId,
      disks: this.diskDescriptions(),
      connect: (address) =>
        this.deps.connectProcessServer?.(address, link.credential) ?? new GrpcProcessServer(address, tls, () => link.credential),
      batchBytes: options.capture.batchBytes,
      windowBytes: options.capture.windowBytes,
      bitmapAfterRetries: options.capture.bitmapAfterRetries,
      timeUnitMs: options.retry.timeUnitMs,
      logger: logger.child({ part: "replication" }),
    });
    const state = local.store.state;
    if (state.protected && state.processServerAddress) await this.replication.assign(state.processServerAddress);

    this.commands = new AgentCommands({
      capture: local.capture,
      replication: this.replication,
      exports: local.exports,
      gate: local.gate,
      fingerprints: local.fingerprints,
      hooks: options.hooks,
      machineId: () => this.machineIdValue,
      assign: (a) => this.assign(a),
      unprotect: () => this.unprotect(),
      switchDisks: (command) => {
        if (command.machineId && command.machineId !== this.machineIdValue) {
          throw new Error(`switch of disks is for machine ${command.machineId}, this agent serves ${this.machineIdValue}`);
        }
        if (options.location === "azure") throw new Error("a machine running in Azure has no image files to switch");
        local.switchImages(new Map(command.disks.map((d) => [d.index, d.imagePath])), logger);
        return { disks: this.diskDescriptions().map((d) => ({ index: d.index, imagePath: d.imagePath })) };
      },
      addDisk: (sizeBytes) => this.addDisk(sizeBytes),
      removeDisk: (index) => this.removeDisk(index),
      updateJob: (u) => link.updateJob(u),
      timeUnitMs: options.retry.timeUnitMs,
      logger,
    });
    link.start(this.commands.handle);
    this.grpc.setServing(true);

    if (options.readyFile) {
      writeFileSync(
        options.readyFile,
        JSON.stringify({
          pid: process.pid,
          grpcAddress: this.grpcAddress,
          metricsUrl: this.metricsUrl,
          nbd: this.nbdUris,
          machineId: this.machineIdValue,
          location: options.location,
          disks: this.diskDescriptions(),
        }),
      );
    }
    logger.info("mobility agent ready", { machineId: this.machineIdValue, location: options.location, nbd: this.nbdUris, metrics: this.metricsUrl });
  }

  private linkToConfigServer(): CsLink {
    const { options, logger } = this;
    const local = () => this.local;
    const csLink = new CsLink({
      ...options.configServer,
      configFile: options.configFile,
      role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
      name: options.name,
      advertisedAddress: this.grpc?.address ?? "",
      metricsUrl: () => this.metricsUrl,
      location: options.location === "azure" ? SiteLocation.SITE_LOCATION_AZURE : SiteLocation.SITE_LOCATION_ON_PREMISES,
      // An Azure agent registers before it has disks: they are the configuration server's answer.
      disks: this.diskDescriptions(),
      tls: this.clientTls(),
      logger,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      report: () => {
        const capture = local()?.capture;
        if (!capture) return { health: Health.HEALTH_NORMAL, issues: [] };
        const { health, issues } = machineHealth(capture, this.replication);
        const machines = this.machineIdValue ? [machineReport(this.machineIdValue, capture, this.replication, this.diskDescriptions())] : [];
        return { health, issues, machines };
      },
    });
    this.csLink = csLink;
    return csLink;
  }

  /** The failed-over page blobs the registration named, in disk-index order. */
  private async openAzureDisks(registration: RegisterResponse): Promise<DiskBackend[]> {
    const disks = [...registration.azureDisks].sort((a, b) => a.index - b.index);
    if (disks.length === 0) {
      throw new Error(
        `the configuration server names no Azure disks for machine "${this.options.name}": it runs in Azure only after a failover (test failovers excluded)`,
      );
    }
    disks.forEach((d, i) => {
      if (d.index !== i) throw new Error(`the configuration server's Azure disks are not numbered 0..${disks.length - 1} (got index ${d.index})`);
      if (!d.blobName) throw new Error(`the configuration server gave Azure disk ${d.index} no page blob name`);
    });
    const s = registration.storage;
    const kind = storageKinds.nameOf(s?.kind ?? 0);
    if (!s || !kind) {
      throw new Error(`the configuration server gave no usable storage settings for the Azure disks (kind ${s?.kind ?? "unset"})`);
    }
    const store = createBlobStore(
      { kind, connectionString: s.connectionString, container: s.container, directory: s.directory },
      this.logger.child({ part: "storage" }),
    );
    this.blobStore = store;
    await store.init();
    const backends: DiskBackend[] = [];
    for (const d of disks) {
      const disk = await PageBlobDisk.open(store, d.blobName);
      if (d.sizeBytes && d.sizeBytes !== disk.size) {
        this.logger.warn("page blob size differs from the configuration server's", { blob: d.blobName, blobSize: disk.size, expected: d.sizeBytes });
      }
      backends.push(disk);
    }
    this.azureDisks = disks;
    this.logger.info("Azure disks opened", { storage: s.kind, disks: disks.map((d) => d.blobName) });
    return backends;
  }

  private async assign(a: MachineAssignment): Promise<AssignmentResult> {
    if (a.machineId && a.machineId !== this.machineIdValue) {
      throw new Error(`assignment is for machine ${a.machineId}, this agent protects ${this.machineIdValue}`);
    }
    if (!a.processServerAddress) throw new Error("assignment names no process server address");
    this.local!.protect(a);
    await this.replication!.assign(a.processServerAddress);
    this.logger.info("machine assigned to a process server", { processServer: a.processServerAddress, id: a.processServerId });
    return {
      machineId: this.machineIdValue,
      processServerAddress: a.processServerAddress,
      nextSequence: this.local!.capture.lastSequence + 1,
      policy: "",
      direction: ReplicationDirection.REPLICATION_DIRECTION_UNSPECIFIED,
      directionAfterSequence: 0,
    };
  }

  /** Protection disabled: the stream closes, nothing is captured until a new assignment. */
  private async unprotect(): Promise<UnprotectResult> {
    const local = this.local!;
    const dropped = local.capture.queuedRecords;
    await this.replication!.stop();
    local.unprotect();
    this.logger.info("protection disabled: replication stopped, disks still served", { machineId: this.machineIdValue, droppedRecords: dropped });
    return { machineId: this.machineIdValue, droppedRecords: dropped, lastSequence: local.capture.lastSequence };
  }

  /** `srlab disk add`: a new image, declared to the process server before NBD clients can write it. */
  private async addDisk(sizeBytes: number): Promise<DiskCreatedResult> {
    if (this.options.location === "azure") throw new Error("a machine running in Azure has the disks of its failover; add disks on premises");
    const local = this.local!;
    const exp = local.addDisk(sizeBytes);
    await this.replication!.setDisks(this.diskDescriptions());
    this.nbd!.addExport(exp);
    const nbd = this.nbd!.uri(exp.name);
    this.logger.info("disk added", { index: exp.diskIndex, sizeBytes, nbd });
    return { index: exp.diskIndex, path: local.entries.find((e) => e.index === exp.diskIndex)?.backend.imagePath ?? "", sizeBytes, nbd };
  }

  /** `srlab disk remove`: NBD clients lose the export first, then capture forgets the disk. */
  private async removeDisk(index: number): Promise<DiskDroppedResult> {
    const local = this.local!;
    const exp = local.exports.find((e) => e.diskIndex === index);
    if (!exp) throw new Error(`no disk ${index} (the machine has ${local.entries.map((e) => e.index).join(", ")})`);
    if (local.entries.length === 1) throw new Error(`disk ${index} is the machine's last disk`);
    this.nbd!.removeExport(exp.name);
    const { path } = await local.removeDisk(index);
    await this.replication!.setDisks(this.diskDescriptions());
    this.logger.info("disk no longer replicated", { index, path });
    return { index, path };
  }

  private clientTls(): ClientTls | undefined {
    return this.options.insecure ? undefined : this.options.tls;
  }

  private diskDescriptions(): Disk[] {
    const uris = this.nbdUris;
    return (this.local?.entries ?? []).map(({ index, backend: disk }) => ({
      diskId: this.azureDisks[index]?.diskId || `${this.options.name}-disk${index}`,
      index,
      sizeBytes: disk.size,
      imagePath: disk.imagePath,
      nbdUri: uris[index]?.uri ?? "",
      nbdUnixUri: uris[index]?.unixUri ?? "",
      addedAtSequence: this.azureDisks[index]?.addedAtSequence ?? 0,
      blobName: disk.blobName,
    }));
  }

  async stop(): Promise<void> {
    const { logger } = this;
    await this.csLink?.stop();
    this.commands?.cancelAll();
    // No new writes from here on, then no more stream: what is still queued goes to the bitmap.
    await this.nbd?.stop();
    await this.replication?.stop();
    if (this.tick) clearInterval(this.tick);
    // Page-blob writes still queued land and are captured (into the bitmap) before the close.
    await this.local?.settle().catch((err: unknown) => logger.warn("queued disk operations failed", { error: (err as Error).message }));
    this.local?.close();
    await this.blobStore?.close().catch(() => undefined);
    await this.metrics?.stop();
    await this.grpc?.stop();
    if (this.options.readyFile) rmSync(this.options.readyFile, { force: true });
    logger.info("mobility agent stopped");
  }
}
