import type * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  AdminServiceService,
  ConfigurationServiceService,
  DiskServiceService,
  GroupServiceService,
  IdentityServiceService,
  PlanServiceService,
  ProofServiceService,
  ReplicationState,
  serviceProtoFiles,
  protoRoot,
  TelemetryServiceService,
} from "../proto/index.js";
import { peekClaims } from "../common/credentials/index.js";
import { writeFileAtomicSync } from "../common/fs/index.js";
import { GrpcServer } from "../common/grpc/index.js";
import { createLogger, type Logger } from "../common/logger.js";
import { createRegistry, type MetricsServer, startMetricsServer } from "../common/metrics/index.js";
import { RecoveryEngine } from "../common/recovery/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import { ClientJobLeases } from "./client-job-leases.js";
import { CommandBus } from "./command-bus.js";
import { DiskJobs } from "./disk-jobs.js";
import { diskService } from "./disk-service.js";
import { CredentialAuthority } from "./credential-authority.js";
import { FailbackJobs } from "./failback-jobs.js";
import { FailoverJobs } from "./failover-jobs.js";
import { JoinTokens } from "./join-tokens.js";
import { GroupPoints } from "./group-points.js";
import { groupService } from "./group-service.js";
import { ADMIN_SERVICE_RULE, adminService, authorize, type ConfigHost, configurationService, identityService } from "./handlers/index.js";
import { PlanRunner, planService, RehearsalScheduler, Rehearsals } from "./plans/index.js";
import { rehearsalAzure, verifyFailback } from "./failback-proofs.js";
import { proofService } from "./proof-service.js";
import { VerifyJobs } from "./verify-jobs.js";
import type { MachineReports } from "./machine-health.js";
import type { ConfigServerOptions } from "./options.js";
import type { ComponentAccess } from "./component-clients.js";
import { ProtectionJobs } from "./protection-jobs.js";
import { machineOperations } from "./machine-operations.js";
import { ResyncScheduler } from "./resync-scheduler.js";
import type { DashboardServer } from "./dashboard/index.js";
import { createConfigDashboard } from "./dashboard-wiring.js";
import { SegmentKeys } from "./segment-keys.js";
import { ConfigStore } from "./store/index.js";
import { registerConfigServerMetrics } from "./metrics.js";
import { TelemetrySampler, telemetryService } from "./telemetry/index.js";

/** Key id of the segment encryption key; a rotation would add a new id and keep the old one. */

/**
 * The configuration server: one per deployment. Holds the deployment's state in SQLite and
 * coordinates the other components through their command streams.
 */
export class ConfigServer {
  readonly logger: Logger;
  private store?: ConfigStore;
  private grpc?: GrpcServer;
  private metrics?: MetricsServer;
  private bus?: CommandBus;
  private blobs?: BlobStore;
  private stopAppSchedule?: () => void;
  private resyncs?: ResyncScheduler;
  private rehearsalSchedules?: RehearsalScheduler;
  private adminCredentialValue = "";
  private ownCredential = "";
  private credentialTimer?: NodeJS.Timeout;
  private authority?: CredentialAuthority;
  private telemetry?: TelemetrySampler;
  private dashboard?: DashboardServer;
  private clientJobs?: ClientJobLeases;

  constructor(
    readonly options: ConfigServerOptions,
    logger?: Logger,
  ) {
    this.logger = logger ?? createLogger("config-server", options.log);
  }

  get grpcAddress(): string {
    return this.grpc?.address ?? "";
  }

  get metricsUrl(): string {
    return this.metrics?.url ?? "";
  }

  /** The web dashboard's address (`http://host:port/`), or "" when it is off. */
  get dashboardUrl(): string {
    return this.dashboard?.url ?? "";
  }

  /** The CLI's credential; also written to <dataDir>/admin.credential. */
  get adminCredential(): string {
    return this.adminCredentialValue;
  }

  /** The credential this server calls process servers and master targets with (role config-server). */
  get serviceCredential(): string {
    return this.ownCredential;
  }

  /** Signs and checks credentials; tests use it to reproduce expiry and revocation. */
  get credentials(): CredentialAuthority {
    if (!this.authority) throw new Error("the configuration server is not started");
    return this.authority;
  }

  async start(): Promise<void> {
    const { options, logger } = this;
    mkdirSync(options.dataDir, { recursive: true });
    const store = ConfigStore.open(join(options.dataDir, "config.db"), { timeUnitSeconds: options.timeUnitSeconds });
    this.store = store;
    const interrupted = store.failUnfinishedJobs("the configuration server restarted while the job ran");
    if (interrupted.length) logger.warn("jobs interrupted by restart", { jobs: interrupted.map((j) => j.jobId) });
    const deploymentSecret = this.secret(store, "deployment-secret");
    // The HMAC key of earlier versions signed credentials anyone holding it could forge; it is gone.
    store.deleteSetting("credential-key");
    const authority = new CredentialAuthority(store, options.credentialTtlSeconds);
    this.authority = authority;
    this.issueOwnCredentials();
    // Renew the admin's and our own credentials well before they expire (a lab may run for weeks).
    this.credentialTimer = setInterval(() => this.issueOwnCredentials(), Math.min(2 ** 31 - 1, (options.credentialTtlSeconds * 1000) / 4));
    this.credentialTimer.unref();

    const self = this;
    const bus = new CommandBus(store, logger);
    this.bus = bus;
    authority.onRevoked((ids, reason) => bus.cut(ids, reason));
    const tls = options.insecure ? undefined : options.tls;
    // Jobs call process servers as the configuration server itself (its credential is renewed).
    const access: ComponentAccess = {
      tls,
      get credential() {
        return self.ownCredential;
      },
    };
    const jobs = new ProtectionJobs({ store, bus, logger, syncBlockBytes: options.syncBlockBytes, stepTimeoutMs: 600_000, access });
    const blobs = createBlobStore(
      { kind: options.storage.kind, connectionString: options.storage.connectionString, container: options.storage.container, directory: options.storage.directory },
      logger,
    );
    this.blobs = blobs;
    await blobs.init();
    const segmentKeys = new SegmentKeys(store, deploymentSecret);
    const engine = new RecoveryEngine({ store: blobs, segmentKeys: segmentKeys.lookup, logger });
    const failovers = new FailoverJobs({
      store,
      bus,
      logger,
      blobs,
      engine,
      tls,
      get credential() {
        return self.ownCredential;
      },
      sourceShutdownTimeoutMs: 60_000,
    });
    const failbacks = new FailbackJobs({
      store,
      bus,
      logger,
      blobs,
      tls,
      get credential() {
        return self.ownCredential;
      },
      syncBlockBytes: options.syncBlockBytes,
      stepTimeoutMs: 600_000,
    });
    const verify = new VerifyJobs({ store, blobs, logger, failedBack: (m) => verifyFailback({ store, bus, blobs, timeoutMs: 120_000 }, m) });
    const groupPoints = new GroupPoints({ store, bus, logger, holdTimeoutMs: 10_000, pointTimeoutMs: 120_000 });
    const planRunner = new PlanRunner({
      store,
      groups: groupPoints,
      logger,
      runDir: join(options.dataDir, "plan-runs"),
      ops: {
        failover: (m, o) => failovers.failover(m, o),
        cleanup: (m) => failovers.cleanupTestFailover(m),
        commit: (m) => {
          const machine = store.getMachine(m);
          return machine?.state === ReplicationState.REPLICATION_STATE_FAILED_BACK ? failbacks.commitFailback(machine) : failovers.commit(m);
        },
        failback: (m) => failbacks.failback(m),
        reprotect: (m) => {
          const machine = store.getMachine(m);
          if (machine?.state === ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED) {
            return failbacks.reprotectToOnPremises(machine, { masterTarget: "", processServer: "", datastore: "", alternateLocation: false });
          }
          return jobs.enableProtection(m, "default");
        },
      },
    });
    const reports = new Map<string, MachineReports>();
    const resyncs = new ResyncScheduler(store, jobs, logger);
    this.resyncs = resyncs;
    const telemetry = new TelemetrySampler({
      source: { machines: () => store.listMachines(), components: () => store.listComponents() },
      timeUnitSeconds: options.timeUnitSeconds,
      intervalMs: options.telemetry.intervalMs,
      windowSeconds: options.telemetry.windowSeconds,
      selfName: options.name,
    });
    this.telemetry = telemetry;
    const rehearsals = new Rehearsals({
      store,
      runner: planRunner,
      groups: groupPoints,
      logger,
      jobs: {
        verify: (m, target, point) => verify.verify(m, target, point),
        appConsistentPoint: (m, tag) => jobs.appConsistentPoint(m, tag),
        workload: (m, spec, inAzure) => jobs.workload(m, spec, inAzure),
      },
      azure: rehearsalAzure({ store, bus, blobs, timeoutMs: 120_000 }),
      azureStartTimeoutMs: 180_000,
      samples: (since) => telemetry.samples(since),
      reportRoot: join(options.dataDir, "rehearsals"),
      healthyTimeoutMs: 300_000,
    });
    const rehearsalSchedules = new RehearsalScheduler(
      store,
      (name, o) => {
        const plan = store.getPlan(name);
        if (!plan) throw new Error(`plan ${name} no longer exists`);
        rehearsals.start(JSON.parse(plan.specJson), o);
      },
      logger,
    );
    this.rehearsalSchedules = rehearsalSchedules;
    const clientJobs = new ClientJobLeases({ store, leaseMs: options.clientJobLeaseSeconds * 1000, logger });
    this.clientJobs = clientJobs;
    const host: ConfigHost = {
      options,
      clientJobs,
      store,
      bus,
      jobs,
      operations: machineOperations({ store, bus, logger, blobs, reports, jobs }),
      failovers,
      failbacks,
      logger,
      credentials: authority,
      joinTokens: new JoinTokens(store),
      segmentKeys,
      reports,
      resyncs,
      telemetry,
    };
    const requireAdmin = (call: { metadata: grpc.Metadata }) => {
      authorize(host, ADMIN_SERVICE_RULE, call.metadata);
    };
    const telemetryImpl = telemetryService({ sampler: telemetry, logger, requireAdmin });
    this.grpc = new GrpcServer({
      host: options.listen.host,
      port: options.listen.port,
      tls: options.insecure ? undefined : options.tls,
      services: [
        { name: "srlab.v1.ConfigurationService", definition: ConfigurationServiceService, implementation: configurationService(host) },
        { name: "srlab.v1.AdminService", definition: AdminServiceService, implementation: adminService(host) },
        { name: "srlab.v1.TelemetryService", definition: TelemetryServiceService, implementation: telemetryImpl },
        {
          name: "srlab.v1.DiskService",
          definition: DiskServiceService,
          implementation: diskService({
            disks: new DiskJobs({ store, bus, logger, syncBlockBytes: options.syncBlockBytes, stepTimeoutMs: 600_000, access }),
            logger,
            requireAdmin,
          }),
        },
        { name: "srlab.v1.IdentityService", definition: IdentityServiceService, implementation: identityService(host) },
        { name: "srlab.v1.ProofService", definition: ProofServiceService, implementation: proofService({ verify, logger, requireAdmin }) },
        { name: "srlab.v1.GroupService", definition: GroupServiceService, implementation: groupService({ store, groups: groupPoints, logger, requireAdmin }) },
        {
          name: "srlab.v1.PlanService",
          definition: PlanServiceService,
          implementation: planService({
            store,
            runner: planRunner,
            groups: groupPoints,
            logger,
            requireAdmin,
            maxGroups: options.planMaxGroups,
            rehearsals,
            scheduler: rehearsalSchedules,
          }),
        },
      ],
      reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
      logger,
    });
    await this.grpc.start();
    if (options.dashboard.enabled) {
      const dashboard = createConfigDashboard(host, () => this.grpcAddress);
      try {
        await dashboard.start();
        this.dashboard = dashboard;
        host.dashboard = dashboard;
      } catch (err) {
        // The dashboard only shows; replication must not stop because its port is taken.
        host.dashboardProblem = `the dashboard could not listen on ${options.dashboard.host}:${options.dashboard.port}: ${(err as Error).message}`;
        logger.error("dashboard not started", { reason: host.dashboardProblem });
      }
    }
    const registry = createRegistry("config-server");
    registerConfigServerMetrics(registry, { machines: () => store.listMachines(), components: () => store.listComponents() });
    this.metrics = await startMetricsServer({ host: options.metrics.host, port: options.metrics.port, registry });
    resyncs.start();
    this.stopAppSchedule = failbacks.startAppConsistentSchedule();
    rehearsalSchedules.start();
    telemetry.start();
    clientJobs.start();
    this.grpc.setServing(true);
    if (options.readyFile) {
      writeFileSync(
        options.readyFile,
        JSON.stringify({ pid: process.pid, grpcAddress: this.grpcAddress, metricsUrl: this.metricsUrl, dashboardUrl: this.dashboardUrl }),
      );
    }
    logger.info("configuration server ready", { address: this.grpcAddress, metrics: this.metricsUrl, dashboard: this.dashboardUrl || "off" });
  }


  /**
   * The admin credential (to <dataDir>/admin.credential, mode 0600) and this server's own, each
   * issued at start and again once half its lifetime has passed.
   */
  private issueOwnCredentials(): void {
    const authority = this.authority!;
    const halfLife = (credential: string) => {
      const claims = peekClaims(credential);
      return !claims || Date.now() / 1000 > (claims.iat + claims.exp) / 2;
    };
    if (!this.adminCredentialValue || halfLife(this.adminCredentialValue)) {
      this.adminCredentialValue = authority.issue({ role: "admin", id: "" }).credential;
      writeFileAtomicSync(join(this.options.dataDir, "admin.credential"), `${this.adminCredentialValue}\n`);
      chmodSync(join(this.options.dataDir, "admin.credential"), 0o600);
    }
    if (!this.ownCredential || halfLife(this.ownCredential)) {
      this.ownCredential = authority.issue({ role: "config-server", id: this.options.name }).credential;
    }
  }

  private secret(store: ConfigStore, key: string): string {
    let value = store.getSetting(key);
    if (!value) {
      value = randomBytes(32).toString("base64");
      store.setSetting(key, value);
    }
    return value;
  }

  async stop(): Promise<void> {
    this.stopAppSchedule?.();
    if (this.credentialTimer) clearInterval(this.credentialTimer);
    await this.dashboard?.stop();
    this.resyncs?.stop();
    this.rehearsalSchedules?.stop();
    this.telemetry?.stop();
    this.clientJobs?.stop();
    this.bus?.close();
    await this.grpc?.stop();
    await this.metrics?.stop();
    await this.blobs?.close();
    this.store?.close();
    this.logger.info("configuration server stopped");
  }
}
