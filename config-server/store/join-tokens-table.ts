import type Database from "better-sqlite3";
import { joinTokenRoles } from "../../common/enum-names/index.js";
import { type JoinToken, JoinTokenState } from "../../proto/index.js";
import { fromBool, fromMillis, toBool } from "./row-codec.js";

export interface NewJoinToken {
  tokenId: string;
  secretHash: string;
  role: string;
  description: string;
  singleUse: boolean;
  createdAt: Date;
  expiresAt: Date;
}

interface JoinTokenRow {
  token_id: string;
  secret_hash: string;
  role: string;
  description: string;
  single_use: number;
  uses: number;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

/** A stored token with its secret's hash (never shown) next to what list prints. */
export interface StoredJoinToken {
  token: JoinToken;
  secretHash: string;
}

export function joinTokenState(r: Pick<JoinTokenRow, "single_use" | "uses" | "expires_at" | "revoked_at">, now: Date): JoinToken["state"] {
  if (r.revoked_at !== null) return JoinTokenState.JOIN_TOKEN_STATE_REVOKED;
  if (r.single_use === 1 && r.uses > 0) return JoinTokenState.JOIN_TOKEN_STATE_USED;
  if (r.expires_at <= now.getTime()) return JoinTokenState.JOIN_TOKEN_STATE_EXPIRED;
  return JoinTokenState.JOIN_TOKEN_STATE_ACTIVE;
}

function fromRow(r: JoinTokenRow, now: Date): StoredJoinToken {
  return {
    secretHash: r.secret_hash,
    token: {
      tokenId: r.token_id,
      role: joinTokenRoles.parse(r.role),
      createdAt: fromMillis(r.created_at),
      expiresAt: fromMillis(r.expires_at),
      singleUse: toBool(r.single_use),
      uses: r.uses,
      state: joinTokenState(r, now),
      description: r.description,
    },
  };
}

/** Join tokens (srlab token create|list|revoke); Register consumes them. */
export class JoinTokensTable {
  private readonly insert;
  private readonly byId;
  private readonly all;
  private readonly use;
  private readonly revokeOne;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO join_tokens (token_id, secret_hash, role, description, single_use, created_at, expires_at)
       VALUES (@tokenId, @secretHash, @role, @description, @singleUse, @createdAt, @expiresAt)`,
    );
    this.byId = db.prepare<[string], JoinTokenRow>("SELECT * FROM join_tokens WHERE token_id = ?");
    this.all = db.prepare<[], JoinTokenRow>("SELECT * FROM join_tokens ORDER BY created_at");
    this.use = db.prepare<[string]>("UPDATE join_tokens SET uses = uses + 1 WHERE token_id = ?");
    this.revokeOne = db.prepare<[number, string]>("UPDATE join_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL");
  }

  add(t: NewJoinToken): void {
    this.insert.run({
      tokenId: t.tokenId,
      secretHash: t.secretHash,
      role: t.role,
      description: t.description,
      singleUse: fromBool(t.singleUse),
      createdAt: t.createdAt.getTime(),
      expiresAt: t.expiresAt.getTime(),
    });
  }

  get(id: string, now: Date): StoredJoinToken | undefined {
    const row = this.byId.get(id);
    return row ? fromRow(row, now) : undefined;
  }

  list(now: Date): JoinToken[] {
    return this.all.all().map((r) => fromRow(r, now).token);
  }

  recordUse(id: string): void {
    this.use.run(id);
  }

  revoke(id: string, at: Date): boolean {
    return this.revokeOne.run(at.getTime(), id).changes > 0;
  }
}
