import { EventEmitter } from "node:events";
import type * as grpc from "@grpc/grpc-js";
import {
  type ComponentRole,
  ConfigurationServiceClient,
  type Disk,
  Health,
  type HealthIssue,
  type HeartbeatRequest,
  type MachineReplicationReport,
  type ProcessServerStats,
  type RegisterResponse,
  SiteLocation,
  type UpdateJobRequest,
  type WatchCommandsResponse,
} from "../../proto/index.js";
import { sleep } from "../async/index.js";
import { bearerMetadata, type ClientTls, channelCredentials, channelOptions, unaryCall } from "../grpc/index.js";
import type { Logger } from "../logger.js";
import { ProcessUsage } from "../metrics/index.js";
import { srlabVersion } from "../version/index.js";

export interface CsLinkOptions {
  address: string;
  passphrase: string;
  role: ComponentRole;
  name: string;
  /** host:port this component serves gRPC on (empty for none). */
  advertisedAddress?: string;
  location?: SiteLocation;
  disks?: Disk[];
  /** Reported on registration; srlab's package version by default. */
  version?: string;
  tls?: ClientTls;
  logger: Logger;
  heartbeatIntervalMs?: number;
  /** Called before each heartbeat to collect the component's health and per-machine reports. */
  report?: () => { health: Health; issues: HealthIssue[]; machines?: MachineReplicationReport[]; processServerStats?: ProcessServerStats };
}

export type CommandHandler = (command: WatchCommandsResponse) => Promise<object | undefined>;

/**
 * A component's link to the configuration server: registration with the passphrase, periodic
 * heartbeats, and the command stream (each command answered with ReportCommandResult). It keeps
 * retrying while the configuration server is away, so daemons can start in any order.
 */
export class CsLink extends EventEmitter {
  readonly client: ConfigurationServiceClient;
  private registration?: RegisterResponse;
  private heartbeatTimer?: NodeJS.Timeout;
  private commandStream?: grpc.ClientReadableStream<WatchCommandsResponse>;
  private stopped = false;
  private handler?: CommandHandler;
  private readonly inFlight = new Set<string>();
  /** Every daemon's CPU and memory ride along in its heartbeats (the telemetry sampler's input). */
  private readonly usage = new ProcessUsage();

  constructor(private readonly options: CsLinkOptions) {
    super();
    this.client = new ConfigurationServiceClient(options.address, channelCredentials(options.tls), channelOptions(options.address));
  }

  get credential(): string {
    if (!this.registration) throw new Error("not registered with the configuration server yet");
    return this.registration.credential;
  }

  get registered(): RegisterResponse {
    if (!this.registration) throw new Error("not registered with the configuration server yet");
    return this.registration;
  }

  /**
   * Registers, retrying transient failures until `deadlineMs`; a wrong passphrase fails at once.
   */
  async register(deadlineMs = 60_000): Promise<RegisterResponse> {
    const until = Date.now() + deadlineMs;
    let delay = 200;
    for (;;) {
      try {
        this.registration = await unaryCall(this.client, this.client.register, {
          passphrase: this.options.passphrase,
          role: this.options.role,
          name: this.options.name,
          address: this.options.advertisedAddress ?? "",
          location: this.options.location ?? SiteLocation.SITE_LOCATION_ON_PREMISES,
          disks: this.options.disks ?? [],
          version: this.options.version ?? srlabVersion(),
        });
        this.options.logger.info("registered with the configuration server", {
          componentId: this.registration.componentId,
          machineId: this.registration.machineId || undefined,
        });
        return this.registration;
      } catch (err) {
        const e = err as grpc.ServiceError;
        // 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED: the configuration server is not up yet.
        if ((e.code !== 14 && e.code !== 4) || Date.now() > until || this.stopped) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /** Starts heartbeats and, when a handler is given, the command stream. */
  start(handler?: CommandHandler): void {
    this.handler = handler;
    const interval = this.options.heartbeatIntervalMs ?? 2_000;
    const beat = () => {
      this.heartbeat().catch((err) => this.options.logger.debug("heartbeat failed", { error: (err as Error).message }));
    };
    beat();
    this.heartbeatTimer = setInterval(beat, interval);
    this.heartbeatTimer.unref();
    if (handler) this.watch();
  }

  async heartbeat(): Promise<void> {
    const r = this.options.report?.() ?? { health: Health.HEALTH_NORMAL, issues: [] };
    const u = this.usage.sample();
    const req: HeartbeatRequest = {
      health: r.health,
      issues: r.issues,
      machines: r.machines ?? [],
      componentStats: { cpuPercent: u.cpuPercent, memoryBytes: u.memoryBytes, memoryPercent: u.memoryPercent, hostCpuPercent: u.hostCpuPercent },
      processServerStats: r.processServerStats,
    };
    await unaryCall(this.client, this.client.heartbeat, req, this.credential, 10_000);
  }

  async updateJob(update: Partial<UpdateJobRequest> & { jobId: string }): Promise<void> {
    if (!update.jobId) return;
    await unaryCall(
      this.client,
      this.client.updateJob,
      { stepName: "", stepState: 0, progressPercent: 0, message: "", bytesSent: 0, ...update },
      this.credential,
    ).catch((err) => this.options.logger.debug("job update failed", { error: (err as Error).message }));
  }

  private watch(): void {
    if (this.stopped) return;
    const stream = this.client.watchCommands({}, bearerMetadata(this.credential));
    this.commandStream = stream;
    stream.on("data", (command: WatchCommandsResponse) => this.dispatch(command));
    stream.on("error", (err: grpc.ServiceError) => {
      if (this.stopped) return;
      if (err.code === 16) {
        // The configuration server no longer knows this credential (its state was reset).
        this.options.logger.error("configuration server rejected this component's credential", { error: err.details });
      }
      this.options.logger.debug("command stream ended", { error: err.details });
    });
    stream.on("close", () => {
      if (this.stopped) return;
      setTimeout(() => this.watch(), 1_000).unref();
    });
  }

  private dispatch(command: WatchCommandsResponse): void {
    // A command is resent after reconnects until answered; run each once.
    if (this.inFlight.has(command.commandId) || !this.handler) return;
    this.inFlight.add(command.commandId);
    const started = Date.now();
    this.handler(command)
      .then(
        (result) => ({ success: true, error: "", resultJson: result ? JSON.stringify(result) : "" }),
        (err: unknown) => ({ success: false, error: (err as Error).message ?? String(err), resultJson: "" }),
      )
      .then(async (outcome) => {
        this.options.logger.info("command finished", {
          command: command.command?.$case,
          commandId: command.commandId,
          success: outcome.success,
          error: outcome.error || undefined,
          ms: Date.now() - started,
        });
        await this.reportResult(command.commandId, outcome);
      })
      .finally(() => this.inFlight.delete(command.commandId));
  }

  private async reportResult(commandId: string, outcome: { success: boolean; error: string; resultJson: string }): Promise<void> {
    for (let attempt = 0; attempt < 30 && !this.stopped; attempt++) {
      try {
        await unaryCall(this.client, this.client.reportCommandResult, { commandId, ...outcome }, this.credential);
        return;
      } catch {
        await sleep(1_000);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.commandStream?.cancel();
    this.client.close();
  }
}
