import type { Logger } from "../common/logger.js";
import { unary } from "../common/grpc/index.js";
import type { ProofServiceServer } from "../proto/index.js";
import { requireAdmin } from "./admin-auth.js";
import type { VerifyJobs } from "./verify-jobs.js";

export function proofService(ctx: { verify: VerifyJobs; credentialKey: Buffer; logger: Logger }): ProofServiceServer {
  const { logger } = ctx;
  return {
    verify: unary(logger, (req, call) => {
      requireAdmin(ctx.credentialKey, call);
      return { job: ctx.verify.verify(req.machine, req.target, req.recoveryPointId) };
    }),
  };
}
