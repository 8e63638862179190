import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import {
  type CredentialClaims,
  type CredentialRole,
  exportPublicKey,
  newCredentialId,
  signCredential,
  subjectOf,
  verifyCredential,
} from "../common/credentials/index.js";
import type { ConfigStore } from "./store/index.js";

const SIGNING_KEY_SETTING = "credential-signing-key";

export interface IssueRequest {
  role: CredentialRole;
  /** Component id, or machine id for agents; empty for the admin. */
  id: string;
  site?: "azure";
  /** The component the credential belongs to (for listing and revocation). */
  componentId?: string;
}

export interface Issued {
  credential: string;
  claims: CredentialClaims;
}

/**
 * The configuration server's signing authority (docs/credentials.md): the Ed25519 private key
 * never leaves it. It signs every credential, records it in the store, and checks a presented
 * credential against signature, expiry and the revocation list.
 */
export class CredentialAuthority {
  readonly publicKey: KeyObject;
  /** SPKI DER of the public key, as RegisterResponse carries it. */
  readonly publicKeyDer: Buffer;
  private readonly privateKey: KeyObject;
  private readonly revocationListeners: Array<(ids: ReadonlySet<string>, reason: string) => void> = [];

  constructor(
    private readonly store: ConfigStore,
    readonly ttlSeconds: number,
  ) {
    let pem = store.getSetting(SIGNING_KEY_SETTING);
    if (!pem) {
      pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      store.setSetting(SIGNING_KEY_SETTING, pem);
    }
    this.privateKey = createPrivateKey(pem);
    this.publicKey = createPublicKey(this.privateKey);
    this.publicKeyDer = exportPublicKey(this.publicKey);
  }

  issue(req: IssueRequest, now = new Date()): Issued {
    const iat = Math.floor(now.getTime() / 1000);
    const claims: CredentialClaims = { jti: newCredentialId(), role: req.role, id: req.id, iat, exp: iat + Math.max(1, Math.round(this.ttlSeconds)) };
    if (req.site) claims.site = req.site;
    this.store.addCredential({
      credentialId: claims.jti,
      role: claims.role,
      subject: subjectOf(claims),
      componentId: req.componentId,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(claims.exp * 1000),
    });
    return { credential: signCredential(this.privateKey, claims), claims };
  }

  /** The claims of a valid credential; UNAUTHENTICATED with the reason otherwise. */
  verify(credential: string, now = Date.now()): CredentialClaims {
    const check = verifyCredential(this.publicKey, credential, now);
    if (!check.ok) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, check.reason);
    const stored = this.store.getCredential(check.claims.jti);
    if (!stored) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `credential ${check.claims.jti} is unknown to this configuration server; register again`);
    if (stored.revokedAt) {
      throw new SrlabError(
        ErrorCode.AUTHENTICATION_FAILED,
        `credential ${check.claims.jti} was revoked at ${stored.revokedAt.toISOString()}${stored.revokedReason ? ` (${stored.revokedReason})` : ""}`,
      );
    }
    return check.claims;
  }

  /** Revokes every unrevoked credential of a component except `keep`; returns the ids revoked. */
  revokeComponent(componentId: string, reason: string, keep?: string): string[] {
    const now = new Date();
    const revoked: string[] = [];
    for (const c of this.store.listCredentials(componentId)) {
      if (c.credentialId === keep || c.revokedAt || (c.expiresAt && c.expiresAt <= now)) continue;
      if (this.store.revokeCredential(c.credentialId, reason, now)) revoked.push(c.credentialId);
    }
    if (revoked.length > 0) for (const listener of this.revocationListeners) listener(new Set(revoked), reason);
    return revoked;
  }

  /** Called with the ids of each revocation: streams opened with them are cut (command streams). */
  onRevoked(listener: (ids: ReadonlySet<string>, reason: string) => void): void {
    this.revocationListeners.push(listener);
  }

  /** What verifiers must refuse besides expired credentials (HeartbeatResponse). */
  revokedIds(): string[] {
    return this.store.revokedCredentialIds();
  }
}
