import type * as grpc from "@grpc/grpc-js";
import { unary } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { ProofServiceServer } from "../proto/index.js";
import type { VerifyJobs } from "./verify-jobs.js";

export function proofService(ctx: { verify: VerifyJobs; logger: Logger; requireAdmin: (call: { metadata: grpc.Metadata }) => void }): ProofServiceServer {
  const { logger } = ctx;
  return {
    verify: unary(logger, (req, call) => {
      ctx.requireAdmin(call);
      return { job: ctx.verify.verify(req.machine, req.target, req.recoveryPointId) };
    }),
  };
}
