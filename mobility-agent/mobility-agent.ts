import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { CsLink } from "../common/cs-link/index.js";
import { type ClientTls, GrpcServer } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { ComponentRole, type Disk, type MachineAssignment, protoRoot, serviceProtoFiles, SiteLocation } from "../proto/index.js";
import { registerAgentMetrics } from "./agent-metrics.js";
import { AgentCommands } from "./commands.js";
import { GrpcProcessServer } from "./grpc-process-server.js";
import { LocalMachine } from "./local-machine.js";
import { NbdServer } from "./nbd/index.js";
import { type MobilityAgentInput, type MobilityAgentOptions, mobilityAgentOptions } from "./options.js";
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
 * into one per-machine sequence, and streams it to the assigned process server.
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
    mkdirSync(options.dataDir, { recursive: true });
    const local = LocalMachine.open({
      dataDir: options.dataDir,
      disks: options.disks,
      memoryBudgetBytes: options.capture.memoryBudgetBytes,
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
    registerAgentMetrics(registry, local.capture, () => this.replication);
    this.metrics = await startMetricsServer({ host: options.metrics.host, port: options.metrics.port, registry, logger });

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

    const tls = this.clientTls();
    const csLink = new CsLink({
      address: options.configServer.address,
      passphrase: options.configServer.passphrase,
      role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
      name: options.name,
      advertisedAddress: this.grpc.address,
      location: SiteLocation.SITE_LOCATION_ON_PREMISES,
      disks: this.diskDescriptions(),
      tls,
      logger,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      report: () => {
        const { health, issues } = machineHealth(local.capture, this.replication);
        const machines = this.machineIdValue ? [machineReport(this.machineIdValue, local.capture, this.replication, this.diskDescriptions())] : [];
        return { health, issues, machines };
      },
    });
    this.csLink = csLink;
    const registration = await csLink.register();
    this.machineIdValue = registration.machineId;
    local.identify(registration.machineId, logger);

    this.replication = new ReplicationClient({
      capture: local.capture,
      machineId: registration.machineId,
      disks: this.diskDescriptions(),
      connect: (address) =>
        this.deps.connectProcessServer?.(address, csLink.credential) ?? new GrpcProcessServer(address, tls, csLink.credential),
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
      hooks: options.hooks,
      machineId: () => this.machineIdValue,
      assign: (a) => this.assign(a),
      updateJob: (u) => csLink.updateJob(u),
      timeUnitMs: options.retry.timeUnitMs,
      logger,
    });
    csLink.start(this.commands.handle);
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
        }),
      );
    }
    logger.info("mobility agent ready", { machineId: this.machineIdValue, nbd: this.nbdUris, metrics: this.metricsUrl });
  }

  private async assign(a: MachineAssignment): Promise<object> {
    if (a.machineId && a.machineId !== this.machineIdValue) {
      throw new Error(`assignment is for machine ${a.machineId}, this agent protects ${this.machineIdValue}`);
    }
    if (!a.processServerAddress) throw new Error("assignment names no process server address");
    this.local!.protect(a);
    await this.replication!.assign(a.processServerAddress);
    this.logger.info("machine assigned to a process server", { processServer: a.processServerAddress, id: a.processServerId });
    return { machineId: this.machineIdValue, processServerAddress: a.processServerAddress, nextSequence: this.local!.capture.lastSequence + 1 };
  }

  private clientTls(): ClientTls | undefined {
    return this.options.insecure ? undefined : this.options.tls;
  }

  private diskDescriptions(): Disk[] {
    const uris = this.nbdUris;
    return (this.local?.images ?? []).map((image, index) => ({
      diskId: `${this.options.name}-disk${index}`,
      index,
      sizeBytes: image.size,
      imagePath: image.imagePath,
      nbdUri: uris[index]?.uri ?? "",
      nbdUnixUri: uris[index]?.unixUri ?? "",
      addedAtSequence: 0,
      blobName: "",
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
    this.local?.close();
    await this.metrics?.stop();
    await this.grpc?.stop();
    if (this.options.readyFile) rmSync(this.options.readyFile, { force: true });
    logger.info("mobility agent stopped");
  }
}
