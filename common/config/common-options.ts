import { z } from "zod";
import { booleanOption } from "./boolean-option.js";

/** Pieces every daemon's configuration shares; each component's options.ts composes them. */
export const tlsOptions = z
  .object({
    caFile: z.string(),
    certFile: z.string(),
    keyFile: z.string(),
  })
  .optional();

export const logOptions = z
  .object({
    level: z.enum(["error", "warn", "info", "debug"]).default("info"),
    format: z.enum(["json", "pretty"]).default("json"),
    file: z.string().optional(),
  })
  .prefault({});

export const metricsOptions = z
  .object({
    host: z.string().default("127.0.0.1"),
    port: z.coerce.number().int().min(0).max(65535).default(0),
  })
  .prefault({});

export const listenOptions = z
  .object({
    host: z.string().default("127.0.0.1"),
    port: z.coerce.number().int().min(0).max(65535).default(0),
  })
  .prefault({});

/**
 * How a component reaches the configuration server and proves it belongs to the deployment:
 * its own credential (written here after it registered), else a join token of its role, else
 * (agents only) the deployment passphrase. After registering, the daemon rewrites its config
 * file to hold the credential alone (docs/credentials.md).
 */
export const configServerLink = z
  .object({
    address: z.string().min(1, "set configServer.address (host:port)"),
    credential: z.string().min(1).optional(),
    joinToken: z.string().min(1).optional(),
    passphrase: z.string().min(1).optional(),
  })
  .refine((l) => Boolean(l.credential || l.joinToken || l.passphrase), {
    message: "set configServer.joinToken (srlab token create), configServer.credential, or for an agent configServer.passphrase",
  });

export const commonDaemonOptions = {
  /** Daemon name shown in status; unique per role. */
  name: z.string().min(1),
  /** State directory (credentials, caches, images). */
  dataDir: z.string().min(1),
  listen: listenOptions,
  metrics: metricsOptions,
  log: logOptions,
  tls: tlsOptions,
  /** Debugging only: plaintext gRPC. */
  insecure: booleanOption.default(false),
  /** The file this configuration came from (set by the daemon entry): the credential is written back into it. */
  configFile: z.string().optional(),
  /** Where the daemon writes "ready" facts (addresses, ports) for srlab up; optional. */
  readyFile: z.string().optional(),
};
