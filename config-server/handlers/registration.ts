import {
  type ConfigurationServiceService,
  ComponentRole,
  type RegisterResponse,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
} from "../../proto/index.js";
import { storageKinds } from "../../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { IssueRequest } from "../credential-authority.js";
import { JoinCertificates } from "../join-certificates.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

const ROLE_CLAIM = {
  [ComponentRole.COMPONENT_ROLE_PROCESS_SERVER]: "process-server",
  [ComponentRole.COMPONENT_ROLE_MASTER_TARGET]: "master-target",
} as const;

const REGISTERING_ROLES = [
  ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
  ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
  ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
];

type RegistrationHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "register">;

/**
 * Register: a component joins the deployment and gets its credential and what its role needs.
 * The caller's proof (own credential, join token or, for agents, the passphrase) was checked by
 * the registration rule (registration-proof.ts) before this runs.
 */
export function registrationHandlers(host: ConfigHost): RegistrationHandlers {
  const { store, bus, jobs, logger, options } = host;
  const reassignmentFailed = (err: unknown) => logger.warn("re-assignment failed", { error: (err as Error).message });
  const joinCertificates = new JoinCertificates({ caFile: options.tls?.caFile, caKeyFile: options.caKeyFile });

  return {
    register: async (req, caller) => {
      if (caller.kind !== "registrant") throw new Error(`registration needs its proof, got a ${caller.kind} caller`);
      if (!req.name) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "registration needs a component name");
      if (!REGISTERING_ROLES.includes(req.role)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "role must be process server, mobility agent or master target");
      }
      // A joiner's certificate is signed before anything is registered, so a bad request changes nothing.
      let certificate = "";
      if (req.certificateRequest) {
        if (caller.proof.kind !== "token") {
          throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "a certificate is signed only when a component joins with a join token (srlab join)");
        }
        certificate = await joinCertificates.sign(req.certificateRequest, req.name);
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
        hostName: req.hostName,
        metricsAddress: req.metricsAddress,
      });
      bus.abandon(registered.componentId, `${req.name} restarted before it answered`);
      let issuedId = "";
      const issue = (r: IssueRequest): string => {
        const issued = host.credentials.issue(r);
        issuedId = issued.claims.jti;
        return issued.credential;
      };
      const response: RegisterResponse = {
        componentId: registered.componentId,
        credential: "",
        storage: undefined,
        segmentKey: Buffer.alloc(0),
        segmentKeyId: "",
        segmentKeys: [],
        credentialPublicKey: Buffer.alloc(0),
        machineId: "",
        timeUnitSeconds: options.timeUnitSeconds,
        azureDisks: [],
        certificate,
      };
      const storageSettings = {
        kind: storageKinds.parse(options.storage.kind),
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
        response.credential = issue({ role: "agent", id: machine.machineId, site: "azure", componentId: registered.componentId });
        response.storage = storageSettings;
        response.azureDisks = machine.azureDisks;
        if (machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && isReplicating(machine.state)) {
          host.failbacks.resendAssignment(machine.machineId).catch(reassignmentFailed);
        }
      } else if (req.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
        const machine = store.upsertMachine({ name: req.name, agentComponentId: registered.componentId });
        store.setMachineDisks(machine.machineId, req.disks);
        response.machineId = machine.machineId;
        response.credential = issue({ role: "agent", id: machine.machineId, componentId: registered.componentId });
        // A restarted agent learns again where to replicate.
        if (
          machine.processServerId &&
          isReplicating(machine.state) &&
          machine.direction === ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE
        ) {
          jobs.sendAssignment("", machine.machineId).catch(reassignmentFailed);
        }
      } else {
        const role = ROLE_CLAIM[req.role as keyof typeof ROLE_CLAIM];
        response.credential = issue({ role, id: registered.componentId, componentId: registered.componentId });
        response.storage = storageSettings;
        // Over this credential- or token-authenticated call only; the passphrase never gets keys.
        response.segmentKeys = host.segmentKeys.entries();
        response.segmentKeyId = host.segmentKeys.currentKeyId;
        response.segmentKey = response.segmentKeys.find((k) => k.keyId === response.segmentKeyId)!.key;
        // The public key only: process servers and master targets verify, they cannot sign.
        response.credentialPublicKey = host.credentials.publicKeyDer;
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
      // A new registration supersedes the component's earlier credentials; a join token counts its use.
      host.credentials.revokeComponent(registered.componentId, "superseded by a new registration", issuedId);
      if (caller.proof.kind === "token") host.joinTokens.markUsed(caller.proof.tokenId);
      logger.info("component registered", {
        name: req.name,
        role: ComponentRole[req.role],
        address: req.address,
        host: req.hostName || undefined,
        proof: caller.proof.kind,
        certificateSigned: certificate !== "" || undefined,
      });
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
