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
  private readonly revocationListeners: Array<(ids: ReadonlySet<string>) => void> = [];

  /** Set from RegisterResponse.credential_public_key. */
  setPublicKey(der: Uint8Array): void {
    this.publicKey = importPublicKey(der);
  }

  get ready(): boolean {
    return this.publicKey !== undefined;
  }

  /** Replaces the revocation list (HeartbeatResponse.revoked_credential_ids). */
  setRevoked(ids: Iterable<string>): void {
    const previous = this.revoked;
    this.revoked = new Set(ids);
    const added = new Set([...this.revoked].filter((id) => !previous.has(id)));
    if (added.size > 0) for (const listener of this.revocationListeners) listener(added);
  }

  /** Called with the ids newly revoked by each heartbeat: streams opened with them are cut. Returns the unsubscribe. */
  onRevoked(listener: (ids: ReadonlySet<string>) => void): () => void {
    this.revocationListeners.push(listener);
    return () => {
      const i = this.revocationListeners.indexOf(listener);
      if (i >= 0) this.revocationListeners.splice(i, 1);
    };
  }

  /**
   * Re-checks a caller verified earlier (a long-lived stream, at each message): UNAUTHENTICATED
   * once its credential was revoked or expired since.
   */
  recheck(claims: { jti: string; exp: number }): void {
    if (this.revoked.has(claims.jti)) {
      throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${claims.jti} was revoked by the configuration server; this stream is closed`);
    }
    if (claims.exp * 1000 <= Date.now()) {
      throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${claims.jti} expired at ${new Date(claims.exp * 1000).toISOString()}; this stream is closed`);
    }
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
