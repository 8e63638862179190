import type * as grpc from "@grpc/grpc-js";
import type { AdminServiceService, ConfigurationServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { authenticate, type Caller } from "./caller.js";
import type { ConfigHost } from "./host.js";

/**
 * Who may call an RPC: "anonymous" needs no credential (registration proves itself otherwise),
 * "admin" only the lab's admin credential, "component" any registered component, "any" the admin
 * or a component.
 */
export type Rule = "anonymous" | "admin" | "component" | "any";

/** The component-facing service's rules, one per RPC. */
export const CONFIGURATION_SERVICE_RULES: Record<keyof typeof ConfigurationServiceService, Rule> = {
  register: "anonymous",
  heartbeat: "component",
  watchCommands: "component",
  reportCommandResult: "component",
  updateJob: "any",
  reportRecoveryPoint: "component",
};

/** Every admin RPC needs the admin credential. */
export const ADMIN_SERVICE_RULE: Rule = "admin";

/** The one place a configuration server call is authenticated and authorized. */
export function authorize(host: ConfigHost, rule: Rule, metadata: grpc.Metadata): Caller {
  if (rule === "anonymous") return { kind: "anonymous" };
  const caller = authenticate(host, metadata);
  if (rule === "admin" && caller.kind !== "admin") {
    throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call needs the lab's admin credential");
  }
  if (rule === "component" && caller.kind !== "component") {
    throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call is for registered components");
  }
  return caller;
}

/** The rule of every AdminService RPC (all admin today; a table so the matrix stays explicit). */
export function adminServiceRules(definition: typeof AdminServiceService): Record<string, Rule> {
  return Object.fromEntries(Object.keys(definition).map((name) => [name, ADMIN_SERVICE_RULE]));
}
