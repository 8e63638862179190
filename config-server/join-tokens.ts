import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { joinTokenRoles } from "../common/enum-names/index.js";
import { type ComponentRole, type JoinToken, JoinTokenState } from "../proto/index.js";
import type { ConfigStore } from "./store/index.js";

export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

/** The CLI name of a role that registers with a join token; undefined for any other role. */
export function roleName(role: ComponentRole): string | undefined {
  return joinTokenRoles.nameOf(role);
}

const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("hex");

/**
 * Join tokens (docs/credentials.md): "<id>.<secret>", id 6 bytes and secret 20 bytes of
 * randomness in base64url. The id is public (list, revoke); only the secret's hash is stored.
 */
export class JoinTokens {
  constructor(private readonly store: ConfigStore) {}

  create(role: ComponentRole, ttlSeconds: number, options: { reusable?: boolean; description?: string } = {}): { token: string; info: JoinToken } {
    const roleText = joinTokenRoles.name(role);
    const ttl = ttlSeconds || DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `ttl must be positive, got ${ttlSeconds}`);
    const tokenId = randomBytes(6).toString("base64url");
    const secret = randomBytes(20).toString("base64url");
    const now = new Date();
    this.store.addJoinToken({
      tokenId,
      secretHash: hashSecret(secret),
      role: roleText,
      description: options.description ?? "",
      singleUse: !options.reusable,
      createdAt: now,
      expiresAt: new Date(now.getTime() + ttl * 1000),
    });
    return { token: `${tokenId}.${secret}`, info: this.store.getJoinToken(tokenId)!.token };
  }

  /**
   * Checks a presented token for `role` (markUsed counts the use once registration succeeded);
   * any refusal is one error saying why (unknown, wrong secret, used, expired, revoked, other role).
   */
  check(token: string, role: ComponentRole): JoinToken {
    const [tokenId = "", secret = ""] = token.split(".");
    const stored = this.store.getJoinToken(tokenId);
    const given = Buffer.from(hashSecret(secret));
    if (!stored || !timingSafeEqual(given, Buffer.from(stored.secretHash))) {
      throw refused("join token not recognised by this configuration server");
    }
    const t = stored.token;
    if (t.state === JoinTokenState.JOIN_TOKEN_STATE_USED) throw refused(`join token ${t.tokenId} was already used`);
    if (t.state === JoinTokenState.JOIN_TOKEN_STATE_EXPIRED) throw refused(`join token ${t.tokenId} expired at ${t.expiresAt!.toISOString()}`);
    if (t.state === JoinTokenState.JOIN_TOKEN_STATE_REVOKED) throw refused(`join token ${t.tokenId} was revoked`);
    if (t.role !== role) {
      throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `join token ${t.tokenId} registers a ${roleName(t.role)}, not a ${roleName(role) ?? "component of this role"}`);
    }
    return t;
  }

  markUsed(tokenId: string): void {
    this.store.recordJoinTokenUse(tokenId);
  }

  list(): JoinToken[] {
    return this.store.listJoinTokens();
  }

  revoke(tokenId: string): JoinToken {
    const stored = this.store.getJoinToken(tokenId);
    if (!stored) throw new SrlabError(ErrorCode.NOT_FOUND, `no join token ${tokenId} (srlab token list shows them)`);
    this.store.revokeJoinToken(tokenId);
    return this.store.getJoinToken(tokenId)!.token;
  }
}

function refused(why: string): SrlabError {
  return new SrlabError(ErrorCode.AUTHENTICATION_FAILED, `${why}: create a new one with srlab token create`);
}
