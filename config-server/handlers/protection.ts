import type { AdminServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type ProtectionHandlers = Pick<
  Handlers<typeof AdminServiceService>,
  "enableProtection" | "disableProtection" | "switchProcessServer" | "startResync" | "createAppConsistentPoint" | "startWorkload"
>;

/** Protection of a machine: enable/disable, resync, app-consistent points and workloads. */
export function protectionHandlers(host: ConfigHost): ProtectionHandlers {
  const { jobs, operations } = host;
  return {
    enableProtection: (req) => ({ job: jobs.enableProtection(req.machine, req.policyName || "default") }),
    disableProtection: (req) => ({ job: operations.disableProtection(req.machine, req.keepReplica) }),
    switchProcessServer: (req) => {
      if (!req.processServer) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "name the process server to move the machine to (--to PS)");
      return { job: operations.switchProcessServer(req.machine, req.processServer) };
    },
    startResync: (req) => ({ job: jobs.startResync(req.machine) }),
    createAppConsistentPoint: (req) => ({ job: jobs.appConsistentPoint(req.machine, req.tagName) }),
    startWorkload: (req) => {
      if (!req.workload) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "workload is required");
      return { job: jobs.workload(req.machine, req.workload) };
    },
  };
}
