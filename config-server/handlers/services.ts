import type * as grpc from "@grpc/grpc-js";
import {
  AdminServiceService,
  type AdminServiceServer,
  ConfigurationServiceService,
  type ConfigurationServiceServer,
  IdentityServiceService,
  type IdentityServiceServer,
} from "../../proto/index.js";
import { serverStream, unary } from "../../common/grpc/index.js";
import { adminServiceRules, authorize, CONFIGURATION_SERVICE_RULES, type Rule } from "./authorization.js";
import { commandHandlers } from "./commands.js";
import { credentialHandlers } from "./credentials.js";
import { dashboardHandlers } from "./dashboard-login.js";
import type { Handlers, StreamHandler, UnaryHandler } from "./handler-types.js";
import { heartbeatHandlers } from "./heartbeat.js";
import type { ConfigHost } from "./host.js";
import { identityHandlers } from "./identity.js";
import { jobHandlers } from "./jobs.js";
import { machineHandlers } from "./machines.js";
import { networkHandlers } from "./networks.js";
import { policyHandlers } from "./policies.js";
import { protectionHandlers } from "./protection.js";
import { recoveryPointHandlers } from "./recovery-points.js";
import { recoveryHandlers } from "./recovery.js";
import { registrationHandlers } from "./registration.js";

/** The component-facing ConfigurationService: registration, heartbeats, commands, job and point reports. */
export function configurationService(host: ConfigHost): ConfigurationServiceServer {
  const jobs = jobHandlers(host);
  const points = recoveryPointHandlers(host);
  const handlers: Handlers<typeof ConfigurationServiceService> = {
    ...registrationHandlers(host),
    ...heartbeatHandlers(host),
    ...commandHandlers(host),
    updateJob: jobs.updateJob,
    reportRecoveryPoint: points.reportRecoveryPoint,
    ...credentialHandlers(host),
  };
  return serve(host, ConfigurationServiceService, CONFIGURATION_SERVICE_RULES, handlers) as ConfigurationServiceServer;
}

/** The AdminService the CLI calls. */
export function adminService(host: ConfigHost): AdminServiceServer {
  const jobs = jobHandlers(host);
  const points = recoveryPointHandlers(host);
  const handlers: Handlers<typeof AdminServiceService> = {
    ...machineHandlers(host),
    ...policyHandlers(host),
    ...protectionHandlers(host),
    ...recoveryHandlers(host),
    ...networkHandlers(host),
    listRecoveryPoints: points.listRecoveryPoints,
    listJobs: jobs.listJobs,
    getJob: jobs.getJob,
    cancelJob: jobs.cancelJob,
    createClientJob: jobs.createClientJob,
    updateClientJob: jobs.updateClientJob,
    attachJobReport: jobs.attachJobReport,
    ...dashboardHandlers(host),
  };
  return serve(host, AdminServiceService, adminServiceRules(AdminServiceService), handlers) as AdminServiceServer;
}

/** The IdentityService the CLI calls: join tokens, credentials, rotation, removal. */
export function identityService(host: ConfigHost): IdentityServiceServer {
  return serve(host, IdentityServiceService, adminServiceRules(IdentityServiceService), identityHandlers(host)) as IdentityServiceServer;
}

/** Wraps each handler so the call is authorized by its rule before the handler runs. */
function serve(
  host: ConfigHost,
  definition: grpc.ServiceDefinition,
  rules: Record<string, Rule>,
  handlers: Record<string, unknown>,
): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const rule = rules[name];
    if (!rule) throw new Error(`no authorization rule for ${method.path}`);
    if (method.responseStream) {
      const handler = handlers[name] as StreamHandler<unknown, unknown>;
      implementation[name] = serverStream(host.logger, async (req, call) => handler(req, authorize(host, rule, call.metadata, req), call));
    } else {
      const handler = handlers[name] as UnaryHandler<unknown, unknown>;
      implementation[name] = unary(host.logger, (req, call) => handler(req, authorize(host, rule, call.metadata, req)));
    }
  }
  return implementation;
}
