import { readFileSync } from "node:fs";
import {
  type Component,
  ComponentRole,
  type Credential,
  type IdentityServiceService,
  type Machine,
  ReplicationState,
} from "../../proto/index.js";
import { caHash } from "../../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { answeredResult } from "../command-outcome.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { segmentKeyHandlers } from "./segment-keys.js";

type IdentityHandlers = Handlers<typeof IdentityServiceService>;

const DEFAULT_ROTATE_TIMEOUT_S = 30;

/** States in which a machine still replicates or depends on replication: removing it would orphan that. */
const BUSY_STATES = new Set([
  ReplicationState.REPLICATION_STATE_ENABLING_PROTECTION,
  ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION,
  ReplicationState.REPLICATION_STATE_FINALIZING_PROTECTION,
  ReplicationState.REPLICATION_STATE_PROTECTED,
  ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
  ReplicationState.REPLICATION_STATE_RESYNCING,
  ReplicationState.REPLICATION_STATE_FAILOVER_IN_PROGRESS,
  ReplicationState.REPLICATION_STATE_REPROTECTING,
  ReplicationState.REPLICATION_STATE_FAILBACK_IN_PROGRESS,
]);

/** IdentityService: join tokens, credentials, rotation and removal (admin only). */
export function identityHandlers(host: ConfigHost): IdentityHandlers {
  const { store } = host;
  const nameOf = (componentId: string) => store.getComponent(componentId)?.name ?? componentId;
  const shown = (c: Credential): Credential => ({ ...c, component: c.component ? nameOf(c.component) : "" });

  return {
    ...segmentKeyHandlers(host),
    createJoinToken: (req) => {
      const { token, info } = host.joinTokens.create(req.role, req.ttlSeconds, { reusable: req.reusable, description: req.description });
      host.logger.info("join token created", { tokenId: info.tokenId, role: info.role, expiresAt: info.expiresAt?.toISOString() });
      return { token, info, caHash: labCaHash(host) };
    },
    listJoinTokens: () => ({ tokens: host.joinTokens.list() }),
    revokeJoinToken: (req) => {
      const token = host.joinTokens.revoke(req.tokenId);
      host.logger.info("join token revoked", { tokenId: token.tokenId });
      return { token };
    },
    listCredentials: (req) => {
      const ids = req.component ? resolve(host, req.component).components.map((c) => c.componentId) : undefined;
      const now = new Date();
      const all = ids ? ids.flatMap((id) => store.listCredentials(id)) : store.listCredentials();
      const live = req.all ? all : all.filter((c) => !c.revokedAt && (c.expiresAt?.getTime() ?? 0) > now.getTime());
      return { credentials: live.map(shown) };
    },
    rotateCredential: async (req) => {
      const component = resolve(host, req.component).single;
      if (!component) throw new SrlabError(ErrorCode.WRONG_STATE, `"${req.component}" has no registered agent to rotate`);
      if (!host.bus.isConnected(component.componentId)) {
        throw new SrlabError(ErrorCode.UNAVAILABLE, `${component.name} is not connected to the configuration server: start it, then rotate again (nothing was changed)`);
      }
      const timeoutMs = (req.timeoutSeconds || DEFAULT_ROTATE_TIMEOUT_S) * 1000;
      const outcome = await host.bus.sendWithin(component.componentId, "", { $case: "renewCredential", value: { reason: "srlab credentials rotate" } }, timeoutMs);
      const newId = answeredResult(outcome, "renewCredential")?.credentialId ?? "";
      const fresh = newId ? store.getCredential(newId) : undefined;
      if (!outcome.success || !fresh || fresh.component !== component.componentId) {
        throw new SrlabError(
          ErrorCode.UNAVAILABLE,
          `${component.name} did not take a new credential (${outcome.error || "it answered without one"}); its current credential stays valid`,
        );
      }
      // Only now that the component uses the new credential is the old one withdrawn.
      const revoked = host.credentials.revokeComponent(component.componentId, "rotated", newId);
      host.logger.info("credential rotated", { component: component.name, credentialId: newId, revoked });
      return { credential: shown(fresh), revokedCredentialIds: revoked };
    },
    removeComponent: (req) => {
      const target = resolve(host, req.component);
      if (target.machine && BUSY_STATES.has(target.machine.state)) {
        throw new SrlabError(
          ErrorCode.WRONG_STATE,
          `machine ${target.machine.name} is ${ReplicationState[target.machine.state].replace("REPLICATION_STATE_", "").toLowerCase().replace(/_/g, " ")}: disable its protection before removing it`,
        );
      }
      for (const c of target.components) {
        if (c.role !== ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) continue;
        const served = store.machinesOfProcessServer(c.componentId).filter((m) => BUSY_STATES.has(m.state));
        if (served.length) {
          throw new SrlabError(ErrorCode.WRONG_STATE, `${c.name} still serves ${served.map((m) => m.name).join(", ")}: disable their protection or move them first`);
        }
      }
      const revoked: string[] = [];
      store.transaction(() => {
        for (const c of target.components) {
          revoked.push(...host.credentials.revokeComponent(c.componentId, "component removed"));
          host.bus.abandon(c.componentId, "component removed");
        }
        if (target.machine) store.deleteMachine(target.machine.machineId);
        for (const c of target.components) store.deleteComponent(c.componentId);
      });
      host.logger.info("component removed", { machine: target.machine?.name, components: target.components.map((c) => c.name), revoked });
      return { removed: target.components.map((c) => c.name), revokedCredentialIds: revoked };
    },
  };
}

interface Target {
  /** What removal takes away: one component, or a machine's agents. */
  components: Component[];
  machine?: Machine;
  /** The one component a rotation renews (a machine: its on-premises agent). */
  single?: Component;
}

/**
 * A component or machine named by id or name. A machine brings its agents (on-premises and in
 * Azure); the on-premises agent's component (named like its machine) stands for the machine.
 */
function resolve(host: ConfigHost, nameOrId: string): Target {
  const { store } = host;
  if (!nameOrId) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "name a component or machine (srlab status lists them)");
  const agentsOf = (m: Machine) =>
    [m.agentComponentId, m.azureAgentComponentId].map((id) => (id ? store.getComponent(id) : undefined)).filter((c): c is Component => c !== undefined);
  const byId = store.getComponent(nameOrId);
  if (byId) {
    const m = store.listMachines().find((x) => x.agentComponentId === byId.componentId);
    return m ? { components: agentsOf(m), machine: m, single: byId } : { components: [byId], single: byId };
  }
  const named = store.listComponents().filter((c) => c.name === nameOrId && c.role !== ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT);
  const machine = store.getMachine(nameOrId);
  if (machine && named.length) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `"${nameOrId}" names a machine and a component; use the component id`);
  if (machine) {
    const agents = agentsOf(machine);
    return { components: agents, machine, single: agents.find((a) => a.componentId === machine.agentComponentId) };
  }
  if (named.length === 0) throw new SrlabError(ErrorCode.NOT_FOUND, `no component or machine "${nameOrId}" (srlab status lists them)`);
  if (named.length > 1) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `"${nameOrId}" names ${named.length} components; use the component id`);
  return { components: named, single: named[0] };
}

/** The lab CA's hash for joiners to pin; empty when the configuration server runs without TLS. */
function labCaHash(host: ConfigHost): string {
  const tls = host.options.insecure ? undefined : host.options.tls;
  if (!tls?.caFile) return "";
  try {
    return caHash(readFileSync(tls.caFile));
  } catch (err) {
    throw new SrlabError(ErrorCode.INTERNAL, `cannot read the lab CA ${tls.caFile}: ${(err as Error).message}`);
  }
}
