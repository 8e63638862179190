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

/** How a component reaches the configuration server and proves it belongs to the deployment. */
export const configServerLink = z.object({
  address: z.string().min(1, "set configServer.address (host:port)"),
  passphrase: z.string().min(1, "set configServer.passphrase (the deployment passphrase)"),
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
  /** Where the daemon writes "ready" facts (addresses, ports) for srlab up; optional. */
  readyFile: z.string().optional(),
};
