import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "../logger.js";
import { tolerateUndecodable, undecodableRequestInterceptor } from "./undecodable-request.js";
import type { TlsFiles } from "./tls-files.js";

export interface ServiceRegistration {
  /** Fully-qualified name, e.g. "srlab.v1.ProcessService", reported by health and reflection. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** TLS material, or undefined for --insecure (debugging only). */
  tls?: TlsFiles;
  services: ServiceRegistration[];
  /** Proto sources for reflection: include paths and files. */
  reflection: { includeDirs: string[]; files: string[] };
  logger: Logger;
  /** Largest message accepted; replication batches carry up to a few MiB of payload. */
  maxMessageBytes?: number;
}

/**
 * A gRPC server that always serves grpc.health.v1.Health and server reflection next to the
 * component's own services, so stock tools (grpcurl, grpc_health_probe) work against any daemon.
 */
export class GrpcServer {
  private readonly server: grpc.Server;
  private readonly health: HealthImplementation;
  private boundPort = 0;

  constructor(private readonly options: GrpcServerOptions) {
    const maxBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    const pkg = protoLoader.loadSync([...options.reflection.files, healthProtoPath], {
      includeDirs: options.reflection.includeDirs,
      keepCase: true,
    });
    this.server = new grpc.Server({
      interceptors: [undecodableRequestInterceptor(pkg)],
      "grpc.max_receive_message_length": maxBytes,
      "grpc.max_send_message_length": maxBytes,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    });
    const statuses: Record<string, "NOT_SERVING"> = { "": "NOT_SERVING" };
    for (const s of options.services) statuses[s.name] = "NOT_SERVING";
    this.health = new HealthImplementation(statuses);
    this.health.addToServer(this.server);
    new ReflectionService(pkg).addToServer(this.server);
    for (const s of options.services) this.server.addService(tolerateUndecodable(s.definition), s.implementation);
  }

  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return `${this.options.host}:${this.boundPort}`;
  }

  async start(): Promise<number> {
    const creds = this.options.tls ? serverCredentials(this.options.tls) : grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${this.options.host}:${this.options.port}`, creds, (err, port) => (err ? reject(err) : resolve(port)));
    });
    this.options.logger.info("gRPC server listening", { address: this.address, tls: Boolean(this.options.tls) });
    return this.boundPort;
  }

  /** Health is NOT_SERVING until the component says it is ready. */
  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", status);
    for (const s of this.options.services) this.health.setStatus(s.name, status);
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.setServing(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function serverCredentials(tls: TlsFiles): grpc.ServerCredentials {
  // Client certificates are requested but not required: daemons present theirs, while stock
  // tools may connect with only the lab CA; callers authenticate with their credential token.
  const ca = readFileSync(tls.caFile);
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: withIssuer(readFileSync(tls.certFile), ca), private_key: readFileSync(tls.keyFile) }], false);
}

/**
 * The leaf followed by the lab CA: a host joining the lab reads the CA from the handshake and
 * checks it against the hash it was given before it trusts it (srlab join, docs/credentials.md).
 */
function withIssuer(certChain: Buffer, ca: Buffer): Buffer {
  if (certChain.includes(ca.toString("utf8").trim())) return certChain;
  const chain = certChain.toString("utf8").trimEnd();
  return Buffer.from(`${chain}\n${ca.toString("utf8").trim()}\n`);
}
