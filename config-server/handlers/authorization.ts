import type * as grpc from "@grpc/grpc-js";
import { type AdminServiceService, ComponentRole, type ConfigurationServiceService, type IdentityServiceService, type RegisterRequest } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { authenticate, type Caller } from "./caller.js";
import type { ConfigHost } from "./host.js";
import { proveRegistration } from "./registration-proof.js";

/**
 * Who may call an RPC, given the authenticated caller and the request. A rule returns nothing
 * when the call is allowed and throws PERMISSION_DENIED (AUTHORIZATION_FAILED) with the reason
 * otherwise. "registration" is the one rule that needs no credential: Register proves itself
 * with the component's own credential, a join token of its role, or (agents only) the passphrase
 * (registration-proof.ts). docs/authorization.md is the table these rules implement.
 */
export type Rule = "registration" | ((caller: Caller, request: never, host: ConfigHost) => void);

const deny = (why: string): never => {
  throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, why);
};

const roleOf = (caller: Caller): ComponentRole | undefined => (caller.kind === "component" ? caller.component.role : undefined);

const admin: Rule = (caller) => {
  if (caller.kind !== "admin") deny("this call needs the lab's admin credential");
};

const anyComponent: Rule = (caller) => {
  if (caller.kind !== "component") deny(`this call is for registered components, not the ${caller.kind === "admin" ? "admin" : "configuration server"}`);
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
  register: "registration",
  heartbeat,
  watchCommands: anyComponent,
  reportCommandResult: commandAddressee,
  updateJob: jobRunner,
  reportRecoveryPoint: processServer,
  renewCredential: anyComponent,
};

/** The rule of admin-only services (AdminService, TelemetryService): the admin credential. */
export const ADMIN_SERVICE_RULE: Rule = admin;

/** Every admin RPC (AdminService, IdentityService) needs the admin credential. */
export function adminServiceRules(definition: typeof AdminServiceService | typeof IdentityServiceService): Record<string, Rule> {
  return Object.fromEntries(Object.keys(definition).map((name) => [name, ADMIN_SERVICE_RULE]));
}

/** The one place a configuration server call is authenticated and authorized. */
export function authorize(host: ConfigHost, rule: Rule, metadata: grpc.Metadata, request?: unknown): Caller {
  if (rule === "registration") return { kind: "registrant", proof: proveRegistration(host, metadata, request as RegisterRequest) };
  const caller = authenticate(host, metadata);
  rule(caller, request as never, host);
  return caller;
}
