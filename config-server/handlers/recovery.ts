import { type AdminServiceService, ReplicationState } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { stateName } from "../protection-jobs.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";

type RecoveryHandlers = Pick<
  Handlers<typeof AdminServiceService>,
  "failover" | "cleanupTestFailover" | "changeRecoveryPoint" | "commitFailover" | "reprotect" | "failback"
>;

/** Failover, test failover, change of point, commit, reprotect and failback. */
export function recoveryHandlers(host: ConfigHost): RecoveryHandlers {
  const { store, failovers, failbacks, jobs } = host;
  return {
    failover: (req) => ({
      job: failovers.failover(req.machine, { selector: req.point, test: req.test, shutdownSource: req.shutdownSource, network: req.network }),
    }),
    cleanupTestFailover: (req) => ({ job: failovers.cleanupTestFailover(req.machine) }),
    changeRecoveryPoint: (req) => ({ job: failovers.changeRecoveryPoint(req.machine, req.point) }),
    commitFailover: (req) => {
      const m = store.getMachine(req.machine);
      if (m?.state === ReplicationState.REPLICATION_STATE_FAILED_BACK) return { job: failbacks.commitFailback(m) };
      return { job: failovers.commit(req.machine) };
    },
    reprotect: (req) => {
      const m = mustGetMachine(store, req.machine);
      if (m.state === ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED) {
        return {
          job: failbacks.reprotectToOnPremises(m, {
            masterTarget: req.masterTarget,
            processServer: req.processServer,
            datastore: req.datastore,
            alternateLocation: req.alternateLocation,
          }),
        };
      }
      if (m.state === ReplicationState.REPLICATION_STATE_UNPROTECTED) return { job: jobs.enableProtection(m.machineId, "default") };
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${m.name} is ${stateName(m.state)}; reprotect needs a committed failover (to protect back to on-premises) or a failed-back, committed machine (to protect to Azure again)`,
      );
    },
    failback: (req) => ({ job: failbacks.failback(req.machine, req.point) }),
  };
}
