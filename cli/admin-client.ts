import type * as grpc from "@grpc/grpc-js";
import {
  AdminServiceClient,
  DiskServiceClient,
  GroupServiceClient,
  IdentityServiceClient,
  PlanServiceClient,
  ProofServiceClient,
  TelemetryServiceClient,
} from "../proto/index.js";
import { channelCredentials, channelOptions, unaryCall } from "../common/grpc/index.js";
import { LabLayout, type LabManifest } from "./lab/index.js";

type Method<Req, Res> = Parameters<typeof unaryCall<Req, Res>>[1];

/** The CLI's connection to the lab's configuration server, as the lab's admin. */
export class AdminClient {
  readonly client: AdminServiceClient;
  readonly manifest: LabManifest;
  private readonly credential: string;

  constructor(readonly layout: LabLayout) {
    this.manifest = layout.read();
    this.credential = layout.adminCredential();
    this.client = new AdminServiceClient(
      this.manifest.configServerAddress,
      channelCredentials({ caFile: this.manifest.caFile }),
      channelOptions(this.manifest.configServerAddress),
    );
  }

  static forDir(dir: string): AdminClient {
    return new AdminClient(new LabLayout(dir));
  }

  /** Runs fn with a client for the lab in dir, closing it afterwards. */
  static async using<T>(dir: string, fn: (client: AdminClient) => Promise<T>): Promise<T> {
    const client = AdminClient.forDir(dir);
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  }

  call<Req, Res>(method: Method<Req, Res>, request: Req, timeoutMs = 30_000): Promise<Res> {
    return unaryCall(this.client, method, request, this.credential, timeoutMs);
  }

  /** srlab.v1.DiskService (disks added or removed after protection), on the same server. */
  get disks(): DiskServiceClient {
    return this.other("disks", DiskServiceClient);
  }

  callDisks<Req, Res>(method: Method<Req, Res>, request: Req, timeoutMs = 30_000): Promise<Res> {
    return unaryCall(this.disks, method, request, this.credential, timeoutMs);
  }

  /** Proofs (srlab verify), replication groups and recovery plans: their own services, same channel. */
  get proofs(): ProofServiceClient {
    return this.other("proofs", ProofServiceClient);
  }

  get groups(): GroupServiceClient {
    return this.other("groups", GroupServiceClient);
  }

  get plans(): PlanServiceClient {
    return this.other("plans", PlanServiceClient);
  }

  /** Like call(), on one of the other services' clients. */
  callOn<C extends grpc.Client, Req, Res>(client: C, method: Method<Req, Res>, request: Req, timeoutMs = 30_000): Promise<Res> {
    return unaryCall(client, method, request, this.credential, timeoutMs);
  }

  /** The configuration server's TelemetryService, with the same credential; close it after use. */
  telemetry(): { client: TelemetryServiceClient; call<Req, Res>(method: Method<Req, Res>, request: Req): Promise<Res> } {
    const client = new TelemetryServiceClient(
      this.manifest.configServerAddress,
      channelCredentials({ caFile: this.manifest.caFile }),
      channelOptions(this.manifest.configServerAddress),
    );
    return { client, call: (method, request) => unaryCall(client, method, request, this.credential, 30_000) };
  }

  /** The configuration server's IdentityService (join tokens, credentials), with the same credential; close it after use. */
  identity(): { client: IdentityServiceClient; call<Req, Res>(method: Method<Req, Res>, request: Req, timeoutMs?: number): Promise<Res> } {
    const client = new IdentityServiceClient(
      this.manifest.configServerAddress,
      channelCredentials({ caFile: this.manifest.caFile }),
      channelOptions(this.manifest.configServerAddress),
    );
    return { client, call: (method, request, timeoutMs = 30_000) => unaryCall(client, method, request, this.credential, timeoutMs) };
  }

  close(): void {
    for (const c of this.others.values()) c.close();
    this.client.close();
  }

  private readonly others = new Map<string, grpc.Client>();

  private other<C extends grpc.Client>(key: string, Ctor: new (address: string, creds: grpc.ChannelCredentials, options?: object) => C): C {
    let c = this.others.get(key) as C | undefined;
    if (!c) {
      // Shares the configuration service's channel: one connection, one TLS handshake.
      c = new Ctor(this.manifest.configServerAddress, channelCredentials({ caFile: this.manifest.caFile }), {
        ...channelOptions(this.manifest.configServerAddress),
        channelOverride: this.client.getChannel(),
      });
      this.others.set(key, c);
    }
    return c;
  }
}
