import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { TlsFiles } from "./tls-files.js";

export interface ClientTls {
  caFile: string;
  /** Presented when given (daemon to daemon); the CLI may connect with the CA only. */
  certFile?: string;
  keyFile?: string;
}

/** Channel credentials verifying the server against the lab CA, or insecure for debugging. */
export function channelCredentials(tls: ClientTls | TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  const cert = tls.certFile ? readFileSync(tls.certFile) : null;
  const key = tls.keyFile ? readFileSync(tls.keyFile) : null;
  return grpc.credentials.createSsl(readFileSync(tls.caFile), key, cert);
}

/**
 * Keepalive and reconnect backoff shared by every srlab client. For a loopback IP target the TLS
 * server name becomes "localhost" (on every lab certificate): SNI may not carry an IP address.
 */
export function channelOptions(address?: string, maxMessageBytes = 64 * 1024 * 1024): grpc.ChannelOptions {
  const loopback = address !== undefined && /^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/.test(address);
  return {
    ...(loopback ? { "grpc.ssl_target_name_override": "localhost" } : {}),
    "grpc.keepalive_time_ms": 10_000,
    // gRPC's default. A peer that answers a ping late is busy, not gone: on a 2-core lab box with
    // dozens of daemons a process can be starved for seconds, and a 5 s timeout then dropped
    // healthy connections (and every call on them) under load. A dead peer is still found in 30 s.
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 5_000,
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
  };
}

export const AUTHORIZATION_HEADER = "authorization";

/** Metadata carrying a component's (or the admin's) credential. */
export function bearerMetadata(credential: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (credential) md.set(AUTHORIZATION_HEADER, `Bearer ${credential}`);
  return md;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** Promise form of a ts-proto unary client method. */
export function unaryCall<Req, Res>(
  client: grpc.Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  credential?: string,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, bearerMetadata(credential), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Resolves once the channel is connected, or rejects after timeoutMs. */
export function waitForReady(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
}
