import type { KeyObject } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../errors/index.js";
import { credentialOf } from "../grpc/index.js";
import { type CredentialClaims, importPublicKey, subjectOf, verifyCredential } from "./credential-token.js";

/** A verified caller: its claims and the subject string the authorization rules match on. */
export interface VerifiedCaller {
  claims: CredentialClaims;
  subject: string;
}

/**
 * What a process server or master target uses to check callers: the configuration server's
 * public key (from registration) and the revoked credential ids (pulled with every heartbeat).
 */
export class CredentialVerifier {
  private publicKey?: KeyObject;
  private revoked = new Set<string>();

  /** Set from RegisterResponse.credential_public_key. */
  setPublicKey(der: Uint8Array): void {
    this.publicKey = importPublicKey(der);
  }

  get ready(): boolean {
    return this.publicKey !== undefined;
  }

  /** Replaces the revocation list (HeartbeatResponse.revoked_credential_ids). */
  setRevoked(ids: Iterable<string>): void {
    this.revoked = new Set(ids);
  }

  isRevoked(jti: string): boolean {
    return this.revoked.has(jti);
  }

  /** The caller of a call; UNAUTHENTICATED when missing, forged, expired or revoked. */
  verify(metadata: grpc.Metadata): VerifiedCaller {
    if (!this.publicKey) throw new SrlabError(ErrorCode.UNAVAILABLE, "not registered with the configuration server yet; retry shortly");
    const credential = credentialOf(metadata);
    if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, 'missing credential: send "authorization: Bearer <credential>"');
    const check = verifyCredential(this.publicKey, credential);
    if (!check.ok) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, check.reason);
    if (this.revoked.has(check.claims.jti)) {
      throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${check.claims.jti} was revoked by the configuration server`);
    }
    return { claims: check.claims, subject: subjectOf(check.claims) };
  }
}
