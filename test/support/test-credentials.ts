import {
  type CredentialClaims,
  type CredentialRole,
  exportPublicKey,
  generateCredentialKeyPair,
  newCredentialId,
  signCredential,
} from "../../common/credentials/index.js";

/**
 * Signs credentials like the configuration server does, for stub configuration servers in
 * tests: `sign("agent/m1")`, `sign("process-server/ps-1")`, `sign("admin")`.
 */
export class TestCredentialAuthority {
  readonly keys = generateCredentialKeyPair();

  get publicKeyDer(): Buffer {
    return exportPublicKey(this.keys.publicKey);
  }

  sign(subject: string, ttlSeconds = 3600): string {
    return signCredential(this.keys.privateKey, claimsOf(subject, ttlSeconds));
  }
}

export function claimsOf(subject: string, ttlSeconds = 3600): CredentialClaims {
  const [role, id = "", site] = subject.split("/");
  const iat = Math.floor(Date.now() / 1000);
  const claims: CredentialClaims = { jti: newCredentialId(), role: role as CredentialRole, id, iat, exp: iat + ttlSeconds };
  if (site === "azure") claims.site = "azure";
  return claims;
}
