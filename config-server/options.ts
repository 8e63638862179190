import { z } from "zod";
import { booleanOption, commonDaemonOptions } from "../common/config/index.js";

export const storageOptions = z
  .object({
    kind: z.enum(["azure", "directory"]).default("azure"),
    /** Azure connection string (Azurite in the lab, or a real account). */
    connectionString: z.string().optional(),
    container: z.string().default("srlab"),
    directory: z.string().optional(),
  })
  .prefault({})
  .refine((s) => (s.kind === "azure" ? Boolean(s.connectionString) : Boolean(s.directory)), {
    message: "storage.kind azure needs storage.connectionString; storage.kind directory needs storage.directory",
  });

export const configServerOptions = z.object({
  ...commonDaemonOptions,
  name: z.string().min(1).default("config-server"),
  /** The deployment passphrase mobility agents register with (process servers and master targets need a join token). */
  passphrase: z.string().min(8, "passphrase must be at least 8 characters"),
  /**
   * The lab CA's private key (PEM): with it the server signs the certificate requests of
   * components joining from other hosts (srlab join, docs/credentials.md). Without it joins fail.
   */
  caKeyFile: z.string().optional(),
  /**
   * Lifetime of the credentials this server signs (docs/credentials.md); components renew theirs
   * when half of it has passed.
   */
  credentialTtlSeconds: z.coerce.number().positive().default(30 * 24 * 3600),
  storage: storageOptions,
  /**
   * Seconds in one ASR "minute" of policies and backoff: 60 in production, 1 to rehearse a
   * day's schedule in a day's worth of seconds.
   */
  timeUnitSeconds: z.coerce.number().positive().default(60),
  /** A component with no heartbeat for this long is reported Critical. */
  heartbeatTimeoutSeconds: z.coerce.number().positive().default(15),
  /**
   * A job the CLI runs (load test, push install) that gets no update from its CLI for this long
   * ends Failed ("the CLI running it stopped reporting at …"); the CLI renews it every few seconds.
   */
  clientJobLeaseSeconds: z.coerce.number().positive().default(60),
  /** Block size of checksum resync and of the initial copy: 64 KiB sends about what rsync sends (npm run bench). */
  syncBlockBytes: z.coerce.number().int().positive().default(64 * 1024),
  /** Groups per recovery plan (ASR allows 7). */
  planMaxGroups: z.coerce.number().int().positive().default(7),
  /** The time-series sampler (TelemetryService): one sample per interval, a window kept in memory. */
  telemetry: z
    .object({
      intervalMs: z.coerce.number().int().min(100).default(1_000),
      windowSeconds: z.coerce.number().positive().default(3_600),
    })
    .prefault({}),
  /**
   * The web dashboard (docs/dashboard.md): read-only pages over plain HTTP on a port of its
   * own, for the admin credential or a session from a one-time login link. On by default (a
   * lab wants it); a daemon installed as a service turns it off with `dashboard.enabled: false`.
   * Port 0 picks a free port (logged, and in the ready file); loopback unless told otherwise.
   */
  dashboard: z
    .object({
      enabled: booleanOption.default(true),
      host: z.string().min(1).default("127.0.0.1"),
      port: z.coerce.number().int().min(0).max(65_535).default(0),
      /** How long a browser session lasts after its login link was used. */
      sessionHours: z.coerce.number().positive().default(12),
      /** How long a one-time login link stays valid if nobody opens it. */
      loginLinkSeconds: z.coerce.number().positive().default(300),
      /**
       * Offer actions that change things on a machine's page (protect, tag, resync, test failover,
       * cleanup), each behind a confirmation page and the same checks as the CLI. Off: read-only.
       */
      actions: booleanOption.default(false),
    })
    .prefault({}),
});

export type ConfigServerOptions = z.infer<typeof configServerOptions>;
