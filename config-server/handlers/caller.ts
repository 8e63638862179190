import type * as grpc from "@grpc/grpc-js";
import type { Component } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { credentialOf, verifyCredential } from "../../common/grpc/index.js";
import type { ConfigHost } from "./host.js";

/** Who is calling: nobody yet (registration), the admin (CLI) or a registered component. */
export type Caller =
  | { kind: "anonymous" }
  | { kind: "admin" }
  | { kind: "component"; component: Component; machineId?: string };

/** Resolves the credential on a call to its holder; a missing or unknown credential is UNAUTHENTICATED. */
export function authenticate(host: ConfigHost, metadata: grpc.Metadata): Caller {
  const credential = credentialOf(metadata);
  if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
  const subject = verifyCredential(host.credentialKey, credential);
  if (!subject) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "credential not issued by this configuration server; register again");
  if (subject === "admin") return { kind: "admin" };
  const [kind, id] = subject.split("/");
  if (kind === "agent") {
    const machine = host.store.getMachine(id!);
    const inAzure = subject.endsWith("/azure");
    const component = machine && host.store.getComponent(inAzure ? machine.azureAgentComponentId : machine.agentComponentId);
    if (!machine || !component) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "unknown machine credential; register again");
    return { kind: "component", component, machineId: machine.machineId };
  }
  const component = host.store.getComponent(id!);
  if (!component) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "unknown component credential; register again");
  return { kind: "component", component };
}
