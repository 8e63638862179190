import { z } from "zod";
import { commonDaemonOptions, configServerLink } from "../common/config/index.js";

export const masterTargetOptions = z.object({
  ...commonDaemonOptions,
  name: z.string().min(1).default("master-target"),
  configServer: configServerLink,
  /** host:port the process server should dial; defaults to the bound listen address. */
  advertisedAddress: z.string().optional(),
  /** Where alternate-location images are created; defaults to `<dataDir>/datastore`. */
  datastore: z.string().optional(),
  heartbeatIntervalMs: z.coerce.number().int().positive().default(2_000),
  /** Block size of GetBlockChecksums when the caller leaves it at 0. */
  defaultBlockBytes: z.coerce.number().int().positive().default(1024 * 1024),
});

export type MasterTargetOptions = z.infer<typeof masterTargetOptions>;
export type MasterTargetOptionsInput = z.input<typeof masterTargetOptions>;
