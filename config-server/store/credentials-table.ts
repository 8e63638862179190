import type Database from "better-sqlite3";
import { credentialRoles } from "../../common/enum-names/index.js";
import type { Credential } from "../../proto/index.js";
import { fromMillis } from "./row-codec.js";

export interface IssuedCredential {
  credentialId: string;
  role: string;
  subject: string;
  componentId?: string;
  issuedAt: Date;
  expiresAt: Date;
}

interface CredentialRow {
  credential_id: string;
  role: string;
  subject: string;
  component_id: string | null;
  issued_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string;
}

/** A credential row as the IdentityService shows it; `component` holds the component id here. */
function fromRow(r: CredentialRow): Credential {
  return {
    credentialId: r.credential_id,
    role: credentialRoles.parse(r.role),
    subject: r.subject,
    component: r.component_id ?? "",
    issuedAt: fromMillis(r.issued_at),
    expiresAt: fromMillis(r.expires_at),
    revokedAt: fromMillis(r.revoked_at),
    revokedReason: r.revoked_reason,
  };
}

/** The credentials the configuration server signed: listing, revocation and the revocation list. */
export class CredentialsTable {
  private readonly insert;
  private readonly byId;
  private readonly ofComponent;
  private readonly all;
  private readonly revokeOne;
  private readonly revokedLive;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO credentials (credential_id, role, subject, component_id, issued_at, expires_at)
       VALUES (@credentialId, @role, @subject, @componentId, @issuedAt, @expiresAt)`,
    );
    this.byId = db.prepare<[string], CredentialRow>("SELECT * FROM credentials WHERE credential_id = ?");
    this.ofComponent = db.prepare<[string], CredentialRow>("SELECT * FROM credentials WHERE component_id = ? ORDER BY issued_at");
    this.all = db.prepare<[], CredentialRow>("SELECT * FROM credentials ORDER BY issued_at");
    this.revokeOne = db.prepare<[number, string, string]>(
      "UPDATE credentials SET revoked_at = ?, revoked_reason = ? WHERE credential_id = ? AND revoked_at IS NULL",
    );
    this.revokedLive = db.prepare<[number], { credential_id: string }>(
      "SELECT credential_id FROM credentials WHERE revoked_at IS NOT NULL AND expires_at > ? ORDER BY credential_id",
    );
  }

  add(c: IssuedCredential): void {
    this.insert.run({
      credentialId: c.credentialId,
      role: c.role,
      subject: c.subject,
      componentId: c.componentId ?? null,
      issuedAt: c.issuedAt.getTime(),
      expiresAt: c.expiresAt.getTime(),
    });
  }

  get(id: string): Credential | undefined {
    const row = this.byId.get(id);
    return row ? fromRow(row) : undefined;
  }

  list(componentId?: string): Credential[] {
    return (componentId === undefined ? this.all.all() : this.ofComponent.all(componentId)).map(fromRow);
  }

  /** True when this call revoked it (false: unknown or revoked before). */
  revoke(id: string, reason: string, at: Date): boolean {
    return this.revokeOne.run(at.getTime(), reason, id).changes > 0;
  }

  /** Revoked credentials that have not expired: the list verifiers must hold. */
  revokedIds(now: Date): string[] {
    return this.revokedLive.all(now.getTime()).map((r) => r.credential_id);
  }
}
