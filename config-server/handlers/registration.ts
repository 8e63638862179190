import { createHash, timingSafeEqual } from "node:crypto";
import {
  type ConfigurationServiceService,
  ComponentRole,
  type RegisterResponse,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
} from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { issueCredential } from "../../common/grpc/index.js";
import { deriveSegmentKey } from "../../common/segment/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

const ROLE_SUBJECT: Partial<Record<ComponentRole, string>> = {
  [ComponentRole.COMPONENT_ROLE_PROCESS_SERVER]: "process-server",
  [ComponentRole.COMPONENT_ROLE_MASTER_TARGET]: "master-target",
};

const REGISTERING_ROLES = [
  ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
  ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
  ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
];

type RegistrationHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "register">;

/** Register: a component joins the deployment and gets its credential and what its role needs. */
export function registrationHandlers(host: ConfigHost): RegistrationHandlers {
  const { store, bus, jobs, logger, options } = host;
  const reassignmentFailed = (err: unknown) => logger.warn("re-assignment failed", { error: (err as Error).message });

  return {
    register: (req) => {
      const given = createHash("sha256").update(req.passphrase).digest();
      const expected = createHash("sha256").update(options.passphrase).digest();
      if (!timingSafeEqual(given, expected)) {
        logger.warn("registration refused: wrong passphrase", { name: req.name, role: ComponentRole[req.role] });
        throw new SrlabError(
          ErrorCode.AUTHENTICATION_FAILED,
          "wrong deployment passphrase: use the passphrase of this configuration server (srlab up writes it to the lab's passphrase file)",
        );
      }
      if (!req.name) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "registration needs a component name");
      if (!REGISTERING_ROLES.includes(req.role)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "role must be process server, mobility agent or master target");
      }
      const inAzure = req.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT && req.location === SiteLocation.SITE_LOCATION_AZURE;
      const registered = store.registerComponent({
        role: req.role,
        // A machine's agent in Azure is a component of its own next to the on-premises agent.
        name: inAzure ? `${req.name}-azure` : req.name,
        address: req.address,
        location: req.location,
        version: req.version,
        credentialHash: "",
      });
      bus.abandon(registered.componentId, `${req.name} restarted before it answered`);
      const response: RegisterResponse = {
        componentId: registered.componentId,
        credential: "",
        storage: undefined,
        segmentKey: Buffer.alloc(0),
        segmentKeyId: "",
        credentialKey: Buffer.alloc(0),
        machineId: "",
        timeUnitSeconds: options.timeUnitSeconds,
        azureDisks: [],
      };
      const storageSettings = {
        kind: options.storage.kind,
        connectionString: options.storage.connectionString ?? "",
        container: options.storage.container,
        directory: options.storage.directory ?? "",
      };
      if (inAzure) {
        // The machine failed over earlier; its agent in Azure runs on the failed-over disks.
        const machine = store.getMachine(req.name);
        if (!machine?.failover || machine.azureDisks.length === 0) {
          throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${req.name} has not failed over to Azure; there is nothing to run in Azure`);
        }
        store.updateMachine(machine.machineId, { azureAgentComponentId: registered.componentId });
        response.machineId = machine.machineId;
        response.credential = issueCredential(host.credentialKey, `agent/${machine.machineId}/azure`);
        response.storage = storageSettings;
        response.azureDisks = machine.azureDisks;
        if (machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && isReplicating(machine.state)) {
          host.failbacks.resendAssignment(machine.machineId).catch(reassignmentFailed);
        }
      } else if (req.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
        const machine = store.upsertMachine({ name: req.name, agentComponentId: registered.componentId });
        store.setMachineDisks(machine.machineId, req.disks);
        response.machineId = machine.machineId;
        response.credential = issueCredential(host.credentialKey, `agent/${machine.machineId}`);
        // A restarted agent learns again where to replicate.
        if (
          machine.processServerId &&
          isReplicating(machine.state) &&
          machine.direction === ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE
        ) {
          jobs.sendAssignment("", machine.machineId).catch(reassignmentFailed);
        }
      } else {
        response.credential = issueCredential(host.credentialKey, `${ROLE_SUBJECT[req.role]}/${registered.componentId}`);
        response.storage = storageSettings;
        response.segmentKeyId = host.segmentKeyId;
        response.segmentKey = deriveSegmentKey(host.deploymentSecret, host.segmentKeyId);
        response.credentialKey = host.credentialKey;
        if (req.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
          // A restarted process server learns again which machines it serves.
          for (const m of store.machinesOfProcessServer(registered.componentId)) {
            if (isReplicating(m.state) && m.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
              host.failbacks.resendAssignment(m.machineId).catch(reassignmentFailed);
            } else if (isReplicating(m.state)) {
              jobs.sendAssignment("", m.machineId).catch(reassignmentFailed);
            }
          }
        }
      }
      logger.info("component registered", { name: req.name, role: ComponentRole[req.role], address: req.address });
      return response;
    },
  };
}

function isReplicating(state: ReplicationState): boolean {
  return (
    state === ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION ||
    state === ReplicationState.REPLICATION_STATE_ENABLING_PROTECTION ||
    state === ReplicationState.REPLICATION_STATE_PROTECTED ||
    state === ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED ||
    state === ReplicationState.REPLICATION_STATE_RESYNCING
  );
}
