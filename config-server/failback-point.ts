import { type Machine, type RecoveryPoint, type RecoveryPointSelector, RecoveryPointType, ReplicationDirection, ReplicationState } from "../proto/index.js";
import { namedRecoveryPoints } from "../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { stateName } from "./protection-jobs.js";
import type { ConfigStore } from "./store/index.js";

/**
 * The point a failback goes to: none for "latest" (everything the Azure machine wrote), else a
 * point of the way back. Resolved before anything stops, so a bad choice changes nothing.
 */
export function chooseFailbackPoint(store: ConfigStore, machine: Machine, selector: RecoveryPointSelector | undefined): RecoveryPoint | undefined {
  const s = selector?.selector;
  const named = s?.$case === "named" ? namedRecoveryPoints.name(s.value) : undefined;
  if (!s || named === "latest") return undefined;
  const back = store
    .listRecoveryPoints(machine.machineId)
    .filter((p) => p.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES);
  if (s.$case === "named") {
    if (named !== "latest-app-consistent") {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `failback goes to latest, latest-app-consistent or a point id of the way back, not "${named}"`);
    }
    const app = back.filter((p) => p.type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT).at(-1);
    if (!app) {
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        `machine ${machine.name} has no app-consistent point of the way back yet: tag it (srlab tag ${machine.name}) or wait for the failback policy's next one`,
      );
    }
    return app;
  }
  if (s.$case === "recoveryPointId") {
    const p = back.find((x) => x.recoveryPointId === s.value);
    if (!p) {
      throw new SrlabError(
        ErrorCode.NOT_FOUND,
        `no recovery point ${s.value} of the way back for ${machine.name} (srlab points ${machine.name} lists them; direction "failback")`,
      );
    }
    return p;
  }
  throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "failback goes to a recovery point of the way back (--point), not to a sequence or a time");
}

/** Why failback cannot start now, in terms of where the machine really is and what to do next. */
export function failbackRefusal(machine: Pick<Machine, "name" | "state" | "direction">): string {
  const n = machine.name;
  const back = machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES;
  const S = ReplicationState;
  const where: Partial<Record<ReplicationState, string>> = {
    [S.REPLICATION_STATE_UNPROTECTED]: "not protected",
    [S.REPLICATION_STATE_FAILOVER_IN_PROGRESS]: "failing over to Azure right now",
    [S.REPLICATION_STATE_FAILED_OVER]: `failed over to Azure and not committed yet: commit the failover (srlab commit ${n}), then reprotect it to on-premises (srlab reprotect ${n})`,
    [S.REPLICATION_STATE_FAILOVER_COMMITTED]: `running in Azure after a committed failover and not replicating anywhere: reprotect it to on-premises first (srlab reprotect ${n})`,
    [S.REPLICATION_STATE_REPROTECTING]: "being reprotected: wait for the reprotect job to finish",
    [S.REPLICATION_STATE_FAILBACK_IN_PROGRESS]: "failing back already",
    [S.REPLICATION_STATE_FAILED_BACK]: `failed back to on-premises already: commit the failback (srlab commit ${n})`,
  };
  const replicating = back ? "replicating from Azure to on-premises" : "replicating from on-premises to Azure";
  const state = where[machine.state] ?? `${stateName(machine.state)}, ${replicating}`;
  const next = back || where[machine.state] ? "" : `; failback needs a machine running in Azure and reprotected to on-premises (srlab failover ${n}, srlab commit ${n}, srlab reprotect ${n})`;
  return `machine ${n} is ${state}${next}`;
}
