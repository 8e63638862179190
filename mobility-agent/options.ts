import path from "node:path";
import { z } from "zod";
import { commonDaemonOptions, configServerLink } from "../common/config/index.js";

const MiB = 1024 * 1024;

export const diskOptions = z.object({
  /** Raw image file; created sparse at sizeBytes when missing, an existing image keeps its size. */
  path: z.string().min(1),
  sizeBytes: z.coerce.number().int().positive(),
});

export const nbdOptions = z
  .object({
    host: z.string().default("127.0.0.1"),
    port: z.coerce.number().int().min(0).max(65535).default(0),
    /** Unix socket for local clients; defaults to <dataDir>/nbd.sock. */
    socketPath: z.string().optional(),
  })
  .prefault({});

export const captureOptions = z
  .object({
    /** Payload bytes held in memory (data mode) before capture keeps only offsets (metadata mode). */
    memoryBudgetBytes: z.coerce.number().int().positive().default(256 * MiB),
    /** Memory for metadata-mode records (about 128 bytes each) before capture degrades to bitmap mode. */
    metadataBudgetBytes: z.coerce.number().int().positive().default(32 * MiB),
    /** Upper bound of one WriteBatch message. */
    batchBytes: z.coerce.number().int().positive().default(4 * MiB),
    /** Payload bytes sent but not yet acknowledged by the process server. */
    windowBytes: z.coerce.number().int().positive().default(32 * MiB),
    /** Failed reconnect attempts after which queued payloads go to the dirty bitmap. */
    bitmapAfterRetries: z.coerce.number().int().min(0).default(4),
  })
  .prefault({});

export const hookOptions = z
  .object({
    /** Shell command that quiesces the application before an app-consistent tag; failure aborts the tag. */
    preFreeze: z.string().optional(),
    /** Shell command that resumes the application after the tag (always run once preFreeze ran). */
    postThaw: z.string().optional(),
    timeoutMs: z.coerce.number().int().positive().default(60_000),
  })
  .prefault({});

export const retryOptions = z
  .object({
    /** One unit of ASR's 1-2-4-8-10-30 backoff: a minute in production, a second or less in the lab. */
    timeUnitMs: z.coerce.number().int().positive().default(60_000),
  })
  .prefault({});

export const mobilityAgentOptions = z
  .object({
    ...commonDaemonOptions,
    configServer: configServerLink,
    /**
     * "azure": the machine runs in Azure after a failover (the failback source). Its disks are the
     * page blobs the configuration server names at registration, in the storage it names.
     */
    location: z.enum(["on-premises", "azure"]).default("on-premises"),
    /** On premises: the disk images (at least one). In Azure: not used. */
    disks: z.array(diskOptions).default([]),
    nbd: nbdOptions,
    capture: captureOptions,
    hooks: hookOptions,
    retry: retryOptions,
    heartbeatIntervalMs: z.coerce.number().int().positive().default(2_000),
  })
  .superRefine((o, ctx) => {
    if (o.location === "on-premises" && o.disks.length === 0) {
      ctx.addIssue({ code: "custom", path: ["disks"], message: "configure at least one disk (disks: [{ path, sizeBytes }])" });
    }
  })
  .transform((o) => ({ ...o, nbd: { ...o.nbd, socketPath: o.nbd.socketPath ?? path.join(o.dataDir, "nbd.sock") } }));

export type MobilityAgentOptions = z.infer<typeof mobilityAgentOptions>;
export type MobilityAgentInput = z.input<typeof mobilityAgentOptions>;
export type CaptureOptions = z.infer<typeof captureOptions>;
