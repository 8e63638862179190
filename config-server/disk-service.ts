import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { credentialOf, unary, verifyCredential } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { DiskServiceServer } from "../proto/index.js";
import type { DiskJobs } from "./disk-jobs.js";

/** srlab.v1.DiskService: admin-only, each call starts a job. */
export function diskService(ctx: { disks: DiskJobs; credentialKey: Buffer; logger: Logger }): DiskServiceServer {
  const admin = (call: { metadata: grpc.Metadata }) => {
    const credential = credentialOf(call.metadata);
    if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
    if (verifyCredential(ctx.credentialKey, credential) !== "admin") {
      throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call needs the lab's admin credential");
    }
  };
  return {
    addDisk: unary(ctx.logger, (req, call) => {
      admin(call);
      return { job: ctx.disks.addDisk(req.machine, req.sizeBytes) };
    }),
    removeDisk: unary(ctx.logger, (req, call) => {
      admin(call);
      return { job: ctx.disks.removeDisk(req.machine, req.diskIndex) };
    }),
  };
}
