import { z } from "zod";
import { commonDaemonOptions, configServerLink } from "../common/config/index.js";
import { CODEC_NAMES, type CodecName, DEFAULT_CODEC } from "../common/segment/index.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const cacheOptions = z
  .object({
    /** Disk spool directory; defaults to `<dataDir>/cache`. */
    dir: z.string().optional(),
    /** Above this many cached (not yet uploaded) bytes the server stops reading agent streams. */
    highWaterBytes: z.coerce.number().int().positive().default(GiB),
    /**
     * Capacity the free-space health is measured against; without it, the free space of the
     * volume holding the cache (statfs).
     */
    capacityBytes: z.coerce.number().int().positive().optional(),
    /** ASR's process-server health: cache free space below these is Warning / Critical. */
    warningFreePercent: z.coerce.number().min(0).max(100).default(30),
    criticalFreePercent: z.coerce.number().min(0).max(100).default(25),
  })
  .prefault({});

export const segmentOptions = z
  .object({
    /** Raw (uncompressed) bytes at which a segment is cut. */
    maxBytes: z.coerce.number().int().min(4096).default(8 * MiB),
    /** A segment is cut once its first write is this old, so RPO stays sub-second at low churn. */
    maxDelayMs: z.coerce.number().int().min(0).default(250),
  })
  .prefault({});

/**
 * Concurrency of the upload stage. Tuning, not behaviour: segments are committed in sequence
 * order whatever these are.
 */
export const uploadOptions = z
  .object({
    /** Segments of one machine compressed and uploading at once. */
    perMachine: z.coerce.number().int().min(1).default(3),
    /** Segments in flight across all machines of this process server (bounds memory with many machines). */
    total: z.coerce.number().int().min(1).default(6),
  })
  .prefault({});

/** Flow control of the Replicate stream. */
export const intakeOptions = z
  .object({
    /** Messages read ahead of the one being appended; beyond this the stream is paused. */
    inboxMessages: z.coerce.number().int().min(1).default(8),
  })
  .prefault({});

export const applyOptions = z
  .object({
    /**
     * Where a batch's writes are dense, write whole aligned blocks (up to 4 MiB, read first
     * unless fully covered) instead of one Put Page per run, when the measured call and byte
     * costs say it is cheaper. Off: one call per contiguous run.
     */
    blockWise: z.union([z.boolean(), z.stringbool()]).default(true),
    /** Storage calls in flight per replica disk; they never overlap. */
    concurrency: z.coerce.number().int().min(1).max(64).default(8),
    /** Uploaded records applied in one pass at most (more means denser blocks, processed moves in bigger steps). */
    batchBytes: z.coerce.number().int().min(MiB).default(64 * MiB),
    /**
     * Least time from the start of one apply pass to the start of the next while less than
     * batchBytes waits: writes that arrive meanwhile land in the same blocks, so a block-wise
     * apply rewrites each block once for many of them. 0: a pass starts as soon as the last ended.
     */
    passIntervalMs: z.coerce.number().int().min(0).max(60_000).default(3000),
    /**
     * Memory for replica bytes the applier has written or read, shared by this server's machines
     * (least recently used out first): a block rewritten around new writes is taken from here
     * instead of being read from storage first. 0: always read.
     */
    blockCacheBytes: z.coerce.number().int().min(0).default(512 * MiB),
  })
  .prefault({});

export const processServerOptions = z.object({
  ...commonDaemonOptions,
  name: z.string().min(1).default("process-server"),
  configServer: configServerLink,
  /** An Azure-side process server is needed for failback. */
  location: z.enum(["on-premises", "azure"]).default("on-premises"),
  /** host:port agents should dial; defaults to the bound listen address. */
  advertisedAddress: z.string().optional(),
  cache: cacheOptions,
  segment: segmentOptions,
  upload: uploadOptions,
  intake: intakeOptions,
  codec: z.enum(CODEC_NAMES as [CodecName, ...CodecName[]]).default(DEFAULT_CODEC),
  /** Worker threads compressing and encrypting segments (and decoding them for the applier); default min(2, cores). */
  segmentWorkers: z.coerce.number().int().min(1).max(64).optional(),
  heartbeatIntervalMs: z.coerce.number().int().positive().default(2_000),
  /** Overrides the backoff unit the configuration server hands out (timeUnitSeconds). */
  retryTimeUnitMs: z.coerce.number().int().positive().optional(),
  /** While storage is unreachable, how often a cheap request checks whether it is back. */
  storageProbeMs: z.coerce.number().int().positive().default(1_000),
  /**
   * While storage answers, how often the same request checks it (0: never), so a storage that
   * restarted while nothing was uploaded is noticed; it must stay below a restart's downtime.
   */
  storageIdleProbeMs: z.coerce.number().int().min(0).default(1_000),
  /** Bytes of uploaded records the applier may hold in memory before it re-reads them from storage. */
  applyQueueBytes: z.coerce.number().int().positive().default(256 * MiB),
  apply: applyOptions,
});

export type ProcessServerOptions = z.infer<typeof processServerOptions>;
export type ProcessServerOptionsInput = z.input<typeof processServerOptions>;
