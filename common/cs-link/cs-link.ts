import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import type * as grpc from "@grpc/grpc-js";
import {
  type CommandResult,
  type ComponentRole,
  ConfigurationServiceClient,
  type Disk,
  Health,
  type HealthIssue,
  type HeartbeatRequest,
  type MachineReplicationReport,
  type ProcessServerStats,
  type RegisterResponse,
  type ReportCommandResultRequest,
  SiteLocation,
  type UpdateJobRequest,
  type WatchCommandsResponse,
} from "../../proto/index.js";
import { sleep } from "../async/index.js";
import { ErrorCode, toSrlabError } from "../errors/index.js";
import { storeCredentialInConfig } from "../config/index.js";
import { type CredentialVerifier, peekClaims } from "../credentials/index.js";
import { bearerMetadata, type ClientTls, channelCredentials, channelOptions, unaryCall } from "../grpc/index.js";
import type { Logger } from "../logger.js";
import type { SegmentKeyRing } from "../segment/index.js";
import { ProcessUsage } from "../metrics/index.js";
import { srlabVersion } from "../version/index.js";

export interface CsLinkOptions {
  address: string;
  /** What registration presents, first found first: own credential, join token, passphrase (agents). */
  credential?: string;
  joinToken?: string;
  passphrase?: string;
  /** The component's config file: the credential is written back into it (docs/credentials.md). */
  configFile?: string;
  /** Process servers and master targets: gets the public key at registration and the revocation list with every heartbeat. */
  verifier?: CredentialVerifier;
  /** Process servers and master targets: the segment keys, from registration and every heartbeat (`srlab keys rotate`). */
  segmentKeys?: SegmentKeyRing;
  role: ComponentRole;
  name: string;
  /** host:port this component serves gRPC on (empty for none). */
  advertisedAddress?: string;
  /** Its /metrics URL, read at registration (the metrics server may start after the link is made). */
  metricsUrl?: () => string;
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

/** What a component reports of one command. */
type CommandOutcome = Omit<ReportCommandResultRequest, "commandId">;

/** Carries out one command; resolves with the result of the command's own kind (or none). */
export type CommandHandler = (command: WatchCommandsResponse) => Promise<CommandResult | undefined>;

/**
 * A component's link to the configuration server: registration (own credential, join token or
 * passphrase), periodic heartbeats, the command stream (each command answered with
 * ReportCommandResult), and the component's credential: kept in its config file, renewed when
 * half its lifetime has passed or when the configuration server asks (rotation). It keeps
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
  /** The credential in use: from registration, renewed later. */
  private current = "";
  private renewing?: Promise<string>;

  constructor(private readonly options: CsLinkOptions) {
    super();
    this.client = new ConfigurationServiceClient(options.address, channelCredentials(options.tls), channelOptions(options.address));
  }

  get credential(): string {
    if (!this.registration) throw new Error("not registered with the configuration server yet");
    return this.current;
  }

  get registered(): RegisterResponse {
    if (!this.registration) throw new Error("not registered with the configuration server yet");
    return this.registration;
  }

  /**
   * Registers, retrying transient failures until `deadlineMs`; a refused proof fails at once,
   * except a refused own credential (expired, revoked) when a join token or passphrase is also
   * configured: then that is tried.
   */
  async register(deadlineMs = 60_000): Promise<RegisterResponse> {
    const until = Date.now() + deadlineMs;
    let delay = 200;
    let credential = this.current || this.options.credential;
    for (;;) {
      try {
        this.registration = await unaryCall(
          this.client,
          this.client.register,
          {
            passphrase: credential ? "" : (this.options.passphrase ?? ""),
            joinToken: credential ? "" : (this.options.joinToken ?? ""),
            role: this.options.role,
            name: this.options.name,
            address: this.options.advertisedAddress ?? "",
            location: this.options.location ?? SiteLocation.SITE_LOCATION_ON_PREMISES,
            disks: this.options.disks ?? [],
            version: this.options.version ?? srlabVersion(),
            certificateRequest: "",
            hostName: hostname(),
            metricsAddress: this.metricsAddress(),
          },
          credential,
        );
        if (this.registration.credentialPublicKey.length > 0) this.options.verifier?.setPublicKey(this.registration.credentialPublicKey);
        if (this.options.segmentKeys && this.registration.segmentKeyId) {
          // Older configuration servers sent only the current key.
          const keys = this.registration.segmentKeys.length > 0 ? this.registration.segmentKeys : [{ keyId: this.registration.segmentKeyId, key: this.registration.segmentKey }];
          this.options.segmentKeys.update(this.registration.segmentKeyId, keys);
        }
        this.adopt(this.registration.credential);
        this.options.logger.info("registered with the configuration server", {
          componentId: this.registration.componentId,
          machineId: this.registration.machineId || undefined,
          with: credential ? "credential" : this.options.joinToken ? "join token" : "passphrase",
        });
        return this.registration;
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === 16 && credential && (this.options.joinToken || this.options.passphrase)) {
          this.options.logger.warn("own credential refused; registering with the configured join token or passphrase", { error: e.details });
          credential = undefined;
          continue;
        }
        // 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED: the configuration server is not up yet.
        if ((e.code !== 14 && e.code !== 4) || Date.now() > until || this.stopped) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  /** host:port of the /metrics endpoint, or empty when there is none (yet). */
  private metricsAddress(): string {
    try {
      return this.options.metricsUrl ? new URL(this.options.metricsUrl()).host : "";
    } catch {
      return "";
    }
  }

  /** Takes a new credential into use and into the config file (nothing else of the join stays there). */
  private adopt(credential: string): void {
    this.current = credential;
    if (!this.options.configFile) return;
    try {
      storeCredentialInConfig(this.options.configFile, credential);
    } catch (err) {
      this.options.logger.error("could not write the credential into the config file", { file: this.options.configFile, error: (err as Error).message });
    }
  }

  /** A new credential from the configuration server (RenewCredential), in use and stored once this resolves. */
  renewCredential(): Promise<string> {
    this.renewing ??= (async () => {
      try {
        const renewed = await unaryCall(this.client, this.client.renewCredential, {}, this.credential, 10_000);
        this.adopt(renewed.credential);
        this.options.logger.info("credential renewed", { credentialId: renewed.credentialId, expiresAt: renewed.expiresAt?.toISOString() });
        return renewed.credentialId;
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  /** True once half of the credential's lifetime has passed. */
  private dueForRenewal(): boolean {
    const claims = peekClaims(this.current);
    return claims !== undefined && Date.now() / 1000 > (claims.iat + claims.exp) / 2;
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
      segmentKeyId: this.options.segmentKeys?.currentKeyId ?? "",
    };
    const answer = await unaryCall(this.client, this.client.heartbeat, req, this.credential, 10_000);
    this.options.verifier?.setRevoked(answer.revokedCredentialIds);
    const ring = this.options.segmentKeys;
    if (ring && answer.segmentKeyId) {
      const rotated = answer.segmentKeyId !== ring.currentKeyId;
      ring.update(answer.segmentKeyId, answer.segmentKeys);
      if (rotated) this.options.logger.info("segment key rotated: new segments use the new key", { segmentKeyId: answer.segmentKeyId });
    }
    if (this.dueForRenewal()) await this.renewCredential();
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
      // A stream of a credential this component replaced (rotation, re-registration) is cut; it reopens with the new one.
      if (err.code === 16 && !/this stream is closed/.test(err.details)) {
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
    if (this.inFlight.has(command.commandId)) return;
    if (command.command?.$case === "renewCredential") {
      // Rotation: answered with the new credential, so the old one is revoked only once this one is in use.
      this.inFlight.add(command.commandId);
      this.renewCredential()
        .then(
          (credentialId): CommandOutcome => ({ success: true, error: "", result: { kind: { $case: "renewCredential", value: { credentialId } } } }),
          (err: unknown): CommandOutcome => ({ success: false, error: (err as Error).message, result: undefined }),
        )
        .then((outcome) => this.reportResult(command.commandId, outcome))
        .finally(() => this.inFlight.delete(command.commandId));
      return;
    }
    if (!this.handler) return;
    this.inFlight.add(command.commandId);
    const started = Date.now();
    this.handler(command)
      .then(
        (result): CommandOutcome => ({ success: true, error: "", result }),
        (err: unknown): CommandOutcome => ({ success: false, error: (err as Error).message ?? String(err), result: undefined }),
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

  private async reportResult(commandId: string, outcome: CommandOutcome): Promise<void> {
    for (let attempt = 0; attempt < 30 && !this.stopped; attempt++) {
      try {
        await unaryCall(this.client, this.client.reportCommandResult, { commandId, ...outcome }, this.credential);
        return;
      } catch (err) {
        // INVALID_ARGUMENT (a result of another kind than the command's) is refused again on every try.
        const refused = toSrlabError(err);
        if (refused.code === ErrorCode.INVALID_ARGUMENT) {
          this.options.logger.error("command result refused", { commandId, error: refused.message });
          return;
        }
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
