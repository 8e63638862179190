import type * as grpc from "@grpc/grpc-js";
import { type AdminServiceService, ComponentRole, type ConfigurationServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { authenticate, type Caller } from "./caller.js";
import type { ConfigHost } from "./host.js";

/**
 * Who may call an RPC, given the authenticated caller and the request. A rule returns nothing
 * when the call is allowed and throws PERMISSION_DENIED (AUTHORIZATION_FAILED) with the reason
 * otherwise. "anonymous" is the one rule that needs no credential (registration proves itself
 * with the passphrase in the request). docs/authorization.md is the table these rules implement.
 */
export type Rule = "anonymous" | ((caller: Caller, request: never, host: ConfigHost) => void);

const deny = (why: string): never => {
  throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, why);
};

const roleOf = (caller: Caller): ComponentRole | undefined => (caller.kind === "component" ? caller.component.role : undefined);

const admin: Rule = (caller) => {
  if (caller.kind !== "admin") deny("this call needs the lab's admin credential");
};

const anyComponent: Rule = (caller) => {
  if (caller.kind !== "component") deny("this call is for registered components, not the admin");
};

const processServer: Rule = (caller) => {
  if (roleOf(caller) !== ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) deny("only process servers report recovery points");
};

/** Heartbeats: any component; an agent reports on its own machine only. */
const heartbeat = ((caller: Caller, req: { machines: { machineId: string }[] }) => {
  anyComponent(caller, req as never, undefined as never);
  if (caller.kind === "component" && caller.machineId) {
    const other = req.machines.find((m) => m.machineId !== caller.machineId);
    if (other) deny(`an agent reports on its own machine only, not on machine ${other.machineId}`);
  }
}) as Rule;

/** Command results: only the component the command was sent to. */
const commandAddressee = ((caller: Caller, req: { commandId: string }, host: ConfigHost) => {
  anyComponent(caller, req as never, host);
  const command = host.store.getCommand(req.commandId);
  if (command && caller.kind === "component" && command.componentId !== caller.component.componentId) {
    deny(`command ${req.commandId} was sent to another component`);
  }
}) as Rule;

/** Job progress: process servers and master targets (they run steps), and the job machine's own agent. */
const jobRunner = ((caller: Caller, req: { jobId: string }, host: ConfigHost) => {
  anyComponent(caller, req as never, host);
  if (caller.kind === "component" && caller.component.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
    const job = host.store.getJob(req.jobId);
    if (job && job.machineId !== caller.machineId) deny(`job ${req.jobId} belongs to another machine`);
  }
}) as Rule;

/** The component-facing service's rules, one per RPC. */
export const CONFIGURATION_SERVICE_RULES: Record<keyof typeof ConfigurationServiceService, Rule> = {
  register: "anonymous",
  heartbeat,
  watchCommands: anyComponent,
  reportCommandResult: commandAddressee,
  updateJob: jobRunner,
  reportRecoveryPoint: processServer,
};

/** The rule of admin-only services (AdminService, TelemetryService): the admin credential. */
export const ADMIN_SERVICE_RULE: Rule = admin;

/** Every admin RPC needs the admin credential. */
export function adminServiceRules(definition: typeof AdminServiceService): Record<string, Rule> {
  return Object.fromEntries(Object.keys(definition).map((name) => [name, ADMIN_SERVICE_RULE]));
}

/** The one place a configuration server call is authenticated and authorized. */
export function authorize(host: ConfigHost, rule: Rule, metadata: grpc.Metadata, request?: unknown): Caller {
  if (rule === "anonymous") return { kind: "anonymous" };
  const caller = authenticate(host, metadata);
  rule(caller, request as never, host);
  return caller;
}
