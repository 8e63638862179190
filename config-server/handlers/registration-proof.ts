import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { ComponentRole, type RegisterRequest, SiteLocation } from "../../proto/index.js";
import type { CredentialClaims } from "../../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { credentialOf } from "../../common/grpc/index.js";
import { roleName } from "../join-tokens.js";
import type { ConfigHost } from "./host.js";

/** How a registration proved itself (docs/credentials.md, "Registration"). */
export type RegistrationProof =
  | { kind: "credential"; claims: CredentialClaims }
  | { kind: "token"; tokenId: string }
  | { kind: "passphrase" };

/**
 * Checks what a Register call presents, in this order: the component's own credential
 * (metadata), a join token of its role, or, for the agent of a new machine only, the deployment
 * passphrase. Nothing else registers anything; the refusal names what would.
 */
export function proveRegistration(host: ConfigHost, metadata: grpc.Metadata, req: RegisterRequest): RegistrationProof {
  const role = roleName(req.role);
  if (!role) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "role must be process server, mobility agent or master target");
  const credential = credentialOf(metadata);
  if (credential) {
    const claims = host.credentials.verify(credential);
    if (claims.role !== role) throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `a ${claims.role} credential cannot register a ${role}`);
    if (!ownsName(host, claims, req)) {
      throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `this credential belongs to another ${role}; it cannot register "${req.name}"`);
    }
    return { kind: "credential", claims };
  }
  if (req.joinToken) return { kind: "token", tokenId: host.joinTokens.check(req.joinToken, req.role).tokenId };
  if (req.role !== ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
    throw new SrlabError(
      ErrorCode.AUTHORIZATION_FAILED,
      `a ${role} registers with a join token of its role (srlab token create --role ${role}) or its own credential; the deployment passphrase registers agents only`,
    );
  }
  if (!req.passphrase || !samePassphrase(req.passphrase, host.options.passphrase)) {
    host.logger.warn("registration refused: wrong passphrase", { name: req.name, role });
    throw new SrlabError(
      ErrorCode.AUTHENTICATION_FAILED,
      "wrong deployment passphrase: use the passphrase of this configuration server (srlab up writes it to the lab's passphrase file), or a join token (srlab token create --role agent)",
    );
  }
  // The passphrase is shared by every new machine; taking over a machine that already has an agent
  // (its credential, its stream, its jobs) needs that agent's own credential or a join token.
  const existing = host.store.getMachine(req.name);
  if (existing || req.location === SiteLocation.SITE_LOCATION_AZURE) {
    host.logger.warn("registration refused: passphrase for an existing machine", { name: req.name });
    throw new SrlabError(
      ErrorCode.AUTHORIZATION_FAILED,
      `machine "${req.name}" is already registered: the deployment passphrase registers new machines only; re-register its agent with its own credential or a join token (srlab token create --role agent)`,
    );
  }
  return { kind: "passphrase" };
}

/** A component's credential re-registers that component only (same role and name). */
function ownsName(host: ConfigHost, claims: CredentialClaims, req: RegisterRequest): boolean {
  if (claims.role === "agent") {
    const machine = host.store.getMachine(claims.id);
    const inAzure = req.location === SiteLocation.SITE_LOCATION_AZURE;
    return machine !== undefined && machine.name === req.name && (claims.site === "azure") === inAzure;
  }
  const component = host.store.getComponent(claims.id);
  return component !== undefined && component.role === req.role && component.name === req.name;
}

function samePassphrase(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}
