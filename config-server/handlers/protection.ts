import { type AdminServiceService, ReplicationState } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";

type ProtectionHandlers = Pick<
  Handlers<typeof AdminServiceService>,
  "enableProtection" | "disableProtection" | "startResync" | "createAppConsistentPoint" | "startWorkload"
>;

/** Protection of a machine: enable/disable, resync, app-consistent points and workloads. */
export function protectionHandlers(host: ConfigHost): ProtectionHandlers {
  const { store, jobs } = host;
  return {
    enableProtection: (req) => ({ job: jobs.enableProtection(req.machine, req.policyName || "default") }),
    disableProtection: (req) => {
      const m = mustGetMachine(store, req.machine);
      store.updateMachine(m.machineId, { state: ReplicationState.REPLICATION_STATE_UNPROTECTED });
      return {};
    },
    startResync: (req) => ({ job: jobs.startResync(req.machine) }),
    createAppConsistentPoint: (req) => ({ job: jobs.appConsistentPoint(req.machine, req.tagName) }),
    startWorkload: (req) => {
      if (!req.workload) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "workload is required");
      return { job: jobs.workload(req.machine, req.workload) };
    },
  };
}
