import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { subjectOf, verifyCredential } from "../../common/credentials/index.js";
import { credentialOf, GrpcServer } from "../../common/grpc/index.js";
import { silentLogger } from "../../common/logger.js";
import { deriveSegmentKey } from "../../common/segment/index.js";
import {
  ComponentRole,
  ConfigurationServiceService,
  type Disk,
  type HeartbeatRequest,
  protoRoot,
  type RecoveryPoint,
  type RegisterRequest,
  type ReportCommandResultRequest,
  serviceProtoFiles,
  type WatchCommandsResponse,
} from "../../proto/index.js";
import { waitUntil } from "./wait.js";
import { TestCredentialAuthority } from "./test-credentials.js";

const ROLE_SUBJECT: Partial<Record<ComponentRole, string>> = {
  [ComponentRole.COMPONENT_ROLE_PROCESS_SERVER]: "process-server",
  [ComponentRole.COMPONENT_ROLE_MASTER_TARGET]: "master-target",
};

export interface StubConfigServerOptions {
  /** Registration must carry this passphrase (UNAUTHENTICATED otherwise); any passes when unset. */
  passphrase?: string;
  /**
   * The machine a registering mobility agent is told it is (credential subject `agent/ID`, or
   * `agent/ID/azure` with Azure disks), and the failed-over disks an Azure agent serves.
   */
  agent?: { machineId: string; azureDisks?: Disk[] };
  /** Every registration gets a new component id (`NAME-1`, `NAME-2` …) instead of its name. */
  freshIds?: boolean;
}

/**
 * A configuration server reduced to what the daemons under test call: registration hands out
 * directory storage, the credential public key and the segment key (component id = its name);
 * registrations, heartbeats, command results and recovery points are kept; commands go to a
 * component's command stream.
 */
export class StubConfigServer {
  readonly authority = new TestCredentialAuthority();
  private readonly deploymentSecret = randomBytes(32);
  readonly points: RecoveryPoint[] = [];
  readonly registrations: RegisterRequest[] = [];
  readonly heartbeats: HeartbeatRequest[] = [];
  readonly results: ReportCommandResultRequest[] = [];
  /** Command streams by credential subject, e.g. "process-server/ps-1". */
  private readonly watchers = new Map<string, grpc.ServerWritableStream<unknown, WatchCommandsResponse>>();
  private server?: GrpcServer;
  /** Credential ids handed to process servers with every heartbeat. */
  readonly revoked = new Set<string>();

  constructor(
    private readonly storageDir: string,
    private readonly options: StubConfigServerOptions = {},
  ) {}

  get address(): string {
    return this.server!.address;
  }

  credential(subject: string): string {
    return this.authority.sign(subject);
  }

  agentCredential(machineId: string): string {
    return this.credential(`agent/${machineId}`);
  }

  async start(): Promise<void> {
    const implementation: grpc.UntypedServiceImplementation = {
      register: (call: grpc.ServerUnaryCall<RegisterRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const { passphrase, agent } = this.options;
        if (passphrase !== undefined && call.request.passphrase !== passphrase) {
          return cb({ code: grpc.status.UNAUTHENTICATED, details: "wrong passphrase" }, null);
        }
        this.registrations.push(call.request);
        const isAgent = call.request.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT && agent !== undefined;
        const azureDisks = isAgent ? (agent.azureDisks ?? []) : [];
        const componentId = this.options.freshIds ? `${call.request.name}-${this.registrations.length}` : call.request.name;
        const role = ROLE_SUBJECT[call.request.role] ?? "component";
        const subject = isAgent ? `agent/${agent.machineId}${azureDisks.length ? "/azure" : ""}` : `${role}/${componentId}`;
        cb(null, {
          componentId,
          credential: this.credential(subject),
          storage: { kind: "directory", connectionString: "", container: "", directory: this.storageDir },
          segmentKey: deriveSegmentKey(this.deploymentSecret, "k1"),
          segmentKeyId: "k1",
          segmentKeys: [{ keyId: "k1", key: deriveSegmentKey(this.deploymentSecret, "k1") }],
          credentialPublicKey: this.authority.publicKeyDer,
          machineId: isAgent ? agent.machineId : "",
          timeUnitSeconds: 1,
          azureDisks,
        });
      },
      heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.heartbeats.push(call.request);
        cb(null, { serverTime: new Date(), revokedCredentialIds: [...this.revoked], segmentKeyId: "", segmentKeys: [] });
      },
      watchCommands: (call: grpc.ServerWritableStream<unknown, WatchCommandsResponse>) => {
        const check = verifyCredential(this.authority.keys.publicKey, credentialOf(call.metadata) ?? "");
        const subject = check.ok ? subjectOf(check.claims) : "";
        this.watchers.set(subject, call);
        call.on("cancelled", () => {
          if (this.watchers.get(subject) === call) this.watchers.delete(subject);
        });
      },
      reportCommandResult: (call: grpc.ServerUnaryCall<ReportCommandResultRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.results.push(call.request);
        cb(null, {});
      },
      updateJob: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
      reportRecoveryPoint: (call: grpc.ServerUnaryCall<{ recoveryPoint?: RecoveryPoint }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (call.request.recoveryPoint) this.points.push(call.request.recoveryPoint);
        cb(null, {});
      },
    };
    this.server = new GrpcServer({
      host: "127.0.0.1",
      port: 0,
      services: [{ name: "srlab.v1.ConfigurationService", definition: ConfigurationServiceService, implementation }],
      reflection: { includeDirs: [protoRoot], files: serviceProtoFiles },
      logger: silentLogger(),
    });
    await this.server.start();
    this.server.setServing(true);
  }

  /** Sends a command to the component with this credential subject and waits for its answer. */
  async command(subject: string, command: WatchCommandsResponse): Promise<ReportCommandResultRequest> {
    await waitUntil(`the command stream of ${subject}`, async () => this.watchers.has(subject));
    this.watchers.get(subject)!.write(command);
    const result = () => this.results.find((r) => r.commandId === command.commandId);
    await waitUntil(`result of ${command.commandId}`, async () => result() !== undefined);
    return result()!;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers.values()) w.end();
    await this.server?.stop(500);
  }
}
