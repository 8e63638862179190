import type { AdminServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type PolicyHandlers = Pick<Handlers<typeof AdminServiceService>, "createPolicy" | "listPolicies">;

/** Replication policies. */
export function policyHandlers(host: ConfigHost): PolicyHandlers {
  const { store } = host;
  return {
    createPolicy: (req) => {
      if (!req.policy) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "policy is required");
      return { policy: store.createPolicy(req.policy) };
    },
    listPolicies: () => ({ policies: store.listPolicies() }),
  };
}
