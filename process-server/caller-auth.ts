import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { credentialOf, verifyCredential } from "../common/grpc/index.js";

const AGENT_PREFIX = "agent/";

/** The verified subject of a call's credential; UNAUTHENTICATED when missing or forged. */
export function callerSubject(metadata: grpc.Metadata, credentialKey: Buffer): string {
  const credential = credentialOf(metadata);
  if (!credential) {
    throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, 'missing credential: send "authorization: Bearer <credential>" from Register');
  }
  const subject = verifyCredential(credentialKey, credential);
  if (!subject) {
    throw new SrlabError(
      ErrorCode.AUTHENTICATION_FAILED,
      "credential was not issued by this deployment's configuration server (re-register the component)",
    );
  }
  return subject;
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
