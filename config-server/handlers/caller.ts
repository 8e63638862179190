import type * as grpc from "@grpc/grpc-js";
import { ComponentRole, type Component } from "../../proto/index.js";
import type { CredentialClaims } from "../../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { credentialOf } from "../../common/grpc/index.js";
import type { ConfigHost } from "./host.js";
import type { RegistrationProof } from "./registration-proof.js";

/**
 * Who is calling: a component registering (with the proof it presented), the admin (CLI), the configuration server itself
 * (its credential for calling process servers and master targets) or a registered component.
 */
export type Caller =
  | { kind: "registrant"; proof: RegistrationProof }
  | { kind: "admin"; claims: CredentialClaims }
  | { kind: "config-server"; claims: CredentialClaims }
  | { kind: "component"; component: Component; machineId?: string; claims: CredentialClaims };

const COMPONENT_ROLE: Partial<Record<CredentialClaims["role"], ComponentRole>> = {
  "process-server": ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
  "master-target": ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
  agent: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
};

/**
 * Resolves the credential on a call to its holder: signature, expiry and revocation are checked
 * by the authority, then the holder must still be registered. Any failure is UNAUTHENTICATED.
 */
export function authenticate(host: ConfigHost, metadata: grpc.Metadata): Caller {
  const credential = credentialOf(metadata);
  if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
  return callerOfClaims(host, host.credentials.verify(credential));
}

export function callerOfClaims(host: ConfigHost, claims: CredentialClaims): Caller {
  if (claims.role === "admin") return { kind: "admin", claims };
  if (claims.role === "config-server") return { kind: "config-server", claims };
  if (claims.role === "agent") {
    const machine = host.store.getMachine(claims.id);
    const inAzure = claims.site === "azure";
    const component = machine && host.store.getComponent((inAzure ? machine.azureAgentComponentId : machine.agentComponentId) ?? "");
    if (!machine || !component) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "machine of this credential is not registered (removed?); register again");
    return { kind: "component", component, machineId: machine.machineId, claims };
  }
  const component = host.store.getComponent(claims.id);
  if (!component || component.role !== COMPONENT_ROLE[claims.role]) {
    throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `component of this credential is not registered (removed?); register again with a join token`);
  }
  return { kind: "component", component, claims };
}
