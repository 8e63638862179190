import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign, verify } from "node:crypto";

/**
 * Signed credentials (docs/credentials.md): `srl1.<claims>.<signature>`, both parts base64url.
 * The claims are JSON; the signature is Ed25519 over the ASCII bytes of `srl1.<claims>`. Only
 * the configuration server holds the private key; every other daemon holds the public key and
 * can verify a credential without being able to make one.
 */
export const CREDENTIAL_PREFIX = "srl1";

export type CredentialRole = "admin" | "config-server" | "process-server" | "master-target" | "agent";

export const CREDENTIAL_ROLES: readonly CredentialRole[] = ["admin", "config-server", "process-server", "master-target", "agent"];

export interface CredentialClaims {
  /** Credential id: what revocation names. */
  jti: string;
  role: CredentialRole;
  /** Component id (process server, master target, configuration server) or machine id (agent); empty for admin. */
  id: string;
  /** Agents only: the agent of the machine failed over to Azure rather than the on-premises one. */
  site?: "azure";
  /** Issued at and expiry, seconds since the epoch. */
  iat: number;
  exp: number;
}

export interface CredentialKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateCredentialKeyPair(): CredentialKeyPair {
  return generateKeyPairSync("ed25519");
}

/** The public key as SPKI DER, the form RegisterResponse carries. */
export function exportPublicKey(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

export function importPublicKey(der: Uint8Array): KeyObject {
  const key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" });
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`credential public key must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
}

export function newCredentialId(): string {
  return randomBytes(12).toString("base64url");
}

/** The subject string authorization rules match on: admin, config-server/ID, process-server/ID, agent/MACHINE[/azure]. */
export function subjectOf(claims: Pick<CredentialClaims, "role" | "id" | "site">): string {
  if (claims.role === "admin") return "admin";
  return `${claims.role}/${claims.id}${claims.site ? `/${claims.site}` : ""}`;
}

export function signCredential(privateKey: KeyObject, claims: CredentialClaims): string {
  const body = `${CREDENTIAL_PREFIX}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  return `${body}.${sign(null, Buffer.from(body), privateKey).toString("base64url")}`;
}

/** Why a credential was refused; `reason` is a sentence a person can act on. */
export type CredentialCheck = { ok: true; claims: CredentialClaims } | { ok: false; reason: string };

/**
 * Checks format, signature and expiry (not revocation: that needs the configuration server's
 * list, see RevocationList). `nowMs` is injectable for tests.
 */
export function verifyCredential(publicKey: KeyObject, credential: string, nowMs = Date.now()): CredentialCheck {
  const parts = credential.split(".");
  if (parts.length !== 3 || parts[0] !== CREDENTIAL_PREFIX) {
    return { ok: false, reason: "malformed credential (expected srl1.<claims>.<signature>); register again" };
  }
  const body = `${parts[0]}.${parts[1]}`;
  const signature = Buffer.from(parts[2]!, "base64url");
  if (signature.length !== 64 || !verify(null, Buffer.from(body), publicKey, signature)) {
    return { ok: false, reason: "credential not issued by this deployment's configuration server (its signature does not verify)" };
  }
  let claims: CredentialClaims;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as CredentialClaims;
  } catch {
    return { ok: false, reason: "credential claims are not JSON" };
  }
  if (!CREDENTIAL_ROLES.includes(claims.role) || typeof claims.jti !== "string" || typeof claims.exp !== "number" || typeof claims.id !== "string") {
    return { ok: false, reason: "credential claims are incomplete" };
  }
  if (claims.exp * 1000 <= nowMs) {
    return { ok: false, reason: `credential ${claims.jti} expired at ${new Date(claims.exp * 1000).toISOString()}; the component must register again` };
  }
  return { ok: true, claims };
}

/** Claims of a credential without checking it: for a holder deciding when to renew its own. */
export function peekClaims(credential: string): CredentialClaims | undefined {
  try {
    return JSON.parse(Buffer.from(credential.split(".")[1] ?? "", "base64url").toString("utf8")) as CredentialClaims;
  } catch {
    return undefined;
  }
}
