import type * as grpc from "@grpc/grpc-js";
import type { CredentialVerifier, VerifiedCaller } from "../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";

const AGENT_PREFIX = "agent/";

/**
 * The verified caller of a call: signed by the configuration server, not expired, not on the
 * revocation list pulled with the last heartbeat. UNAUTHENTICATED otherwise.
 */
export function verifiedCaller(metadata: grpc.Metadata, verifier: CredentialVerifier): VerifiedCaller {
  return verifier.verify(metadata);
}

/** The verified subject of a call's credential (agent/<machine>, process-server/<id>, admin, ...). */
export function callerSubject(metadata: grpc.Metadata, verifier: CredentialVerifier): string {
  return verifier.verify(metadata).subject;
}

/** Which of a machine's agents is calling: the on-premises one, or the one of the failed-over machine in Azure. */
export type AgentSite = "on-premises" | "azure";

function agentSiteOf(subject: string, machineId: string): AgentSite | undefined {
  if (subject === `${AGENT_PREFIX}${machineId}`) return "on-premises";
  if (subject === `${AGENT_PREFIX}${machineId}/azure`) return "azure";
  return undefined;
}

/** An agent may only replicate its own machine (from on-premises, or from Azure during failback). */
export function requireAgentOf(subject: string, machineId: string): AgentSite {
  const site = agentSiteOf(subject, machineId);
  if (!site) {
    throw new SrlabError(
      ErrorCode.AUTHORIZATION_FAILED,
      `credential of "${subject}" cannot replicate machine "${machineId}"; only agent/${machineId} or agent/${machineId}/azure can`,
    );
  }
  return site;
}

/**
 * Read-side calls (checksums, drain, status): the machine's own agents, or any deployment
 * component or admin; another machine's agent is refused.
 */
export function requireMachineReader(subject: string, machineId: string): void {
  if (subject.startsWith(AGENT_PREFIX) && !agentSiteOf(subject, machineId)) {
    throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `credential of "${subject}" cannot read machine "${machineId}"`);
  }
}
