import type * as grpc from "@grpc/grpc-js";
import { unary } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { DiskServiceServer } from "../proto/index.js";
import type { DiskJobs } from "./disk-jobs.js";

/** srlab.v1.DiskService: admin-only, each call starts a job. */
export function diskService(ctx: { disks: DiskJobs; logger: Logger; requireAdmin: (call: { metadata: grpc.Metadata }) => void }): DiskServiceServer {
  return {
    addDisk: unary(ctx.logger, (req, call) => {
      ctx.requireAdmin(call);
      return { job: ctx.disks.addDisk(req.machine, req.sizeBytes) };
    }),
    removeDisk: unary(ctx.logger, (req, call) => {
      ctx.requireAdmin(call);
      return { job: ctx.disks.removeDisk(req.machine, req.diskIndex) };
    }),
  };
}
