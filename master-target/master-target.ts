import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CredentialVerifier } from "../common/credentials/index.js";
import { CsLink } from "../common/cs-link/index.js";
import { GrpcServer } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, type MetricsServer, type Registry, startMetricsServer } from "../common/metrics/index.js";
import { ComponentRole, MasterTargetServiceService, protoRoot, serviceProtoFiles, SiteLocation } from "../proto/index.js";
import { masterTargetService } from "./master-target-service.js";
import { MasterTargetMetrics } from "./metrics.js";
import type { MasterTargetOptions } from "./options.js";
import { TargetRegistry } from "./target-registry.js";

/**
 * The on-premises master target: during failback it receives the Azure-side process server's
 * write stream and applies it to on-premises disk images (the original disks, differences only,
 * or new images in a datastore, full copy).
 */
export class MasterTarget {
  readonly logger: Logger;
  readonly registry: Registry;
  private targets?: TargetRegistry;
  private grpc?: GrpcServer;
  private metrics?: MetricsServer;
  private link?: CsLink;
  private readonly verifier = new CredentialVerifier();
  private componentIdValue = "";

  constructor(
    readonly options: MasterTargetOptions,
    logger?: Logger,
  ) {
    this.logger = logger ?? createLogger("master-target", options.log);
    this.registry = createRegistry("master-target");
  }

  get grpcAddress(): string {
    return this.grpc?.address ?? "";
  }

  get metricsUrl(): string {
    return this.metrics?.url ?? "";
  }

  /** Assigned by the configuration server at registration. */
  get componentId(): string {
    return this.componentIdValue;
  }

  /** Where alternate-location images go unless PrepareTarget names a datastore. */
  get datastore(): string {
    return this.options.datastore ?? join(this.options.dataDir, "datastore");
  }

  async start(): Promise<void> {
    try {
      await this.startParts();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const { options, logger } = this;
    mkdirSync(options.dataDir, { recursive: true });
    mkdirSync(this.datastore, { recursive: true });
    const targets = await TargetRegistry.open(join(options.dataDir, "targets"), this.datastore, logger);
    this.targets = targets;
    const metrics = new MasterTargetMetrics(this.registry);
    for (const t of targets.list()) metrics.appliedSequence.set({ machine_id: t.machineId }, t.appliedSequence);

    const tls = options.insecure ? undefined : options.tls;
    this.grpc = new GrpcServer({
      host: options.listen.host,
      port: options.listen.port,
      tls,
      services: [
        {
          name: "srlab.v1.MasterTargetService",
          definition: MasterTargetServiceService,
          implementation: masterTargetService({
            targets,
            verifier: this.verifier,
            metrics,
            logger,
            defaultBlockBytes: options.defaultBlockBytes,
          }),
        },
      ],
      reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
      logger,
    });
    await this.grpc.start();
    this.metrics = await startMetricsServer({ host: options.metrics.host, port: options.metrics.port, registry: this.registry, logger });

    this.link = new CsLink({
      ...options.configServer,
      configFile: options.configFile,
      verifier: this.verifier,
      role: ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
      name: options.name,
      advertisedAddress: options.advertisedAddress ?? this.grpcAddress,
      metricsUrl: () => this.metricsUrl,
      location: SiteLocation.SITE_LOCATION_ON_PREMISES,
      tls,
      logger,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
    });
    const registration = await this.link.register();
    this.componentIdValue = registration.componentId;
    if (!this.verifier.ready) {
      throw new Error("the configuration server sent no credential public key; the master target cannot verify process servers");
    }
    // No command is addressed to master targets yet; answering keeps the outbox from holding one forever.
    this.link.start(async (command) => {
      throw new Error(`the master target does not handle ${command.command?.$case ?? "unknown"} commands`);
    });

    this.grpc.setServing(true);
    if (options.readyFile) {
      writeFileSync(
        options.readyFile,
        JSON.stringify({ pid: process.pid, grpcAddress: this.grpcAddress, metricsUrl: this.metricsUrl, componentId: this.componentId }),
      );
    }
    logger.info("master target ready", { address: this.grpcAddress, metrics: this.metricsUrl, componentId: this.componentId });
  }

  async stop(): Promise<void> {
    await this.link?.stop();
    await this.grpc?.stop();
    // After the server: no batch is mid-apply once the images close.
    await this.targets?.close();
    await this.metrics?.stop();
    this.logger.info("master target stopped");
  }
}
