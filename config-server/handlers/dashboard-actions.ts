import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { NamedRecoveryPoint, SiteLocation } from "../../proto/index.js";
import type { DashboardActions } from "../dashboard/index.js";
import type { Caller } from "./caller.js";
import type { ConfigHost } from "./host.js";
import { protectionHandlers } from "./protection.js";
import { recoveryHandlers } from "./recovery.js";

/**
 * The dashboard's actions, made by calling the AdminService's own handlers: a dashboard action
 * passes exactly the checks the same CLI verb does and starts the same job. The dashboard has
 * already authenticated its caller as the admin (credential or a session made from it).
 */
export function dashboardActions(host: ConfigHost): DashboardActions {
  const protection = protectionHandlers(host);
  const recovery = recoveryHandlers(host);
  const admin: Caller = { kind: "admin", claims: { jti: "dashboard", role: "admin", id: "", iat: 0, exp: 0 } };
  const started = <T extends { job?: { jobId: string } }>(r: T) => {
    if (!r.job) throw new SrlabError(ErrorCode.INTERNAL, "the action started no job");
    return r.job as NonNullable<T["job"]> & import("../../proto/index.js").Job;
  };
  return {
    azureNetworks: () => host.store.listNetworks().filter((n) => n.location === SiteLocation.SITE_LOCATION_AZURE).map((n) => n.name),
    async run(action, machine, params) {
      switch (action) {
        case "protect":
          return started(await protection.enableProtection({ machine, policyName: "" }, admin));
        case "tag":
          return started(await protection.createAppConsistentPoint({ machine, tagName: params.tag?.trim() ?? "" }, admin));
        case "resync":
          return started(await protection.startResync({ machine }, admin));
        case "test-failover":
          if (!params.network) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a test failover needs an isolated network");
          return started(
            await recovery.failover({ machine, point: { selector: { $case: "named", value: NamedRecoveryPoint.NAMED_RECOVERY_POINT_LATEST } }, test: true, shutdownSource: false, network: params.network }, admin),
          );
        case "cleanup":
          return started(await recovery.cleanupTestFailover({ machine }, admin));
      }
    },
  };
}
