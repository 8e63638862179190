import { credentialRoles, joinTokenRoles, joinTokenStates } from "../../common/enum-names/index.js";
import type { Credential, IdentityServiceClient, JoinToken } from "../../proto/index.js";
import { duration } from "../arguments.js";
import { AdminClient } from "../admin-client.js";
import { forgetLabComponents, joinAddress, joinCommand } from "../lab/index.js";
import { printJson, printTable } from "../output.js";


/** Runs fn with the lab's IdentityService. */
async function withIdentity<T>(dir: string, fn: (id: { client: IdentityServiceClient; call: ReturnType<AdminClient["identity"]>["call"] }, admin: AdminClient) => Promise<T>): Promise<T> {
  return AdminClient.using(dir, async (admin) => {
    const identity = admin.identity();
    try {
      return await fn(identity, admin);
    } finally {
      identity.client.close();
    }
  });
}

const tokenDocument = (t: JoinToken) => ({
  tokenId: t.tokenId,
  role: joinTokenRoles.name(t.role),
  state: joinTokenStates.name(t.state),
  singleUse: t.singleUse,
  uses: t.uses,
  createdAt: t.createdAt?.toISOString() ?? null,
  expiresAt: t.expiresAt?.toISOString() ?? null,
  description: t.description || null,
});

const credentialDocument = (c: Credential) => ({
  credentialId: c.credentialId,
  role: credentialRoles.name(c.role),
  subject: c.subject,
  component: c.component || null,
  issuedAt: c.issuedAt?.toISOString() ?? null,
  expiresAt: c.expiresAt?.toISOString() ?? null,
  revokedAt: c.revokedAt?.toISOString() ?? null,
  revokedReason: c.revokedReason || null,
});

/** `srlab token create`: prints the token (once), the CA hash a joiner pins and the whole `srlab join` command. */
export function tokenCreate(dir: string, o: { role?: string; ttl?: string; reusable?: boolean; description?: string; json?: boolean }) {
  const role = o.role ?? "agent";
  if (!joinTokenRoles.has(role)) throw new Error(`--role must be one of ${joinTokenRoles.names.join(", ")}, got "${role}"`);
  const ttlMs = duration("--ttl", o.ttl ?? "24h", true);
  if (ttlMs < 1000) throw new Error(`--ttl must be at least 1s, got "${o.ttl}"`);
  return withIdentity(dir, async (id, admin) => {
    const r = await id.call(id.client.createJoinToken, { role: joinTokenRoles.parse(role), ttlSeconds: Math.round(ttlMs / 1000), reusable: Boolean(o.reusable), description: o.description ?? "" });
    const configServer = joinAddress(admin.manifest);
    const command = r.caHash ? joinCommand(role, configServer, r.token, r.caHash) : null;
    if (o.json) {
      printJson({ token: r.token, caHash: r.caHash || null, configServer, command, ...tokenDocument(r.info!) });
      return;
    }
    console.log(r.token);
    console.log(`role ${joinTokenRoles.name(r.info!.role)}, ${r.info!.singleUse ? "single use" : "reusable"}, expires ${r.info!.expiresAt?.toISOString()}`);
    if (r.caHash) console.log(`CA hash: ${r.caHash}`);
    console.log(`configuration server: ${configServer}`);
    if (command) console.log(`on the host that joins, run:\n  ${command}`);
  });
}

export function tokenList(dir: string, o: { json?: boolean }) {
  return withIdentity(dir, async (id) => {
    const { tokens } = await id.call(id.client.listJoinTokens, {});
    if (o.json) return printJson(tokens.map(tokenDocument));
    if (tokens.length === 0) return console.log("no join tokens (create one with srlab token create)");
    printTable(
      ["TOKEN ID", "ROLE", "STATE", "USES", "EXPIRES", "DESCRIPTION"],
      tokens.map((t) => [t.tokenId, joinTokenRoles.name(t.role), joinTokenStates.name(t.state), `${t.uses}${t.singleUse ? "/1" : ""}`, t.expiresAt?.toISOString() ?? "", t.description]),
    );
  });
}

export function tokenRevoke(dir: string, tokenId: string, o: { json?: boolean }) {
  return withIdentity(dir, async (id) => {
    // A whole token pasted instead of its id works too.
    const { token } = await id.call(id.client.revokeJoinToken, { tokenId: tokenId.split(".")[0]! });
    if (o.json) printJson(tokenDocument(token!));
    else console.log(`join token ${token!.tokenId} revoked`);
  });
}

export function credentialsList(dir: string, o: { component?: string; all?: boolean; json?: boolean }) {
  return withIdentity(dir, async (id) => {
    const { credentials } = await id.call(id.client.listCredentials, { component: o.component ?? "", all: Boolean(o.all) });
    if (o.json) return printJson(credentials.map(credentialDocument));
    printTable(
      ["CREDENTIAL ID", "SUBJECT", "COMPONENT", "EXPIRES", "REVOKED"],
      credentials.map((c) => [c.credentialId, c.subject, c.component, c.expiresAt?.toISOString() ?? "", c.revokedAt ? `${c.revokedAt.toISOString()} ${c.revokedReason}` : ""]),
    );
  });
}

/** `srlab credentials rotate COMPONENT`: new credential in use, then the old one revoked. */
export function credentialsRotate(dir: string, component: string, o: { timeout?: string; json?: boolean }) {
  const timeoutMs = duration("--timeout", o.timeout ?? "30s", true);
  return withIdentity(dir, async (id) => {
    const r = await id.call(id.client.rotateCredential, { component, timeoutSeconds: Math.ceil(timeoutMs / 1000) }, timeoutMs + 10_000);
    if (o.json) return printJson({ credential: credentialDocument(r.credential!), revokedCredentialIds: r.revokedCredentialIds });
    console.log(`${r.credential!.component}: now uses credential ${r.credential!.credentialId} (expires ${r.credential!.expiresAt?.toISOString()})`);
    console.log(r.revokedCredentialIds.length ? `revoked ${r.revokedCredentialIds.join(", ")}` : "no earlier credential was still valid");
  });
}

/** `srlab remove COMPONENT|MACHINE`: revoke its credentials, unregister it, stop it in this lab. */
export function removeComponent(dir: string, component: string, o: { json?: boolean }) {
  return withIdentity(dir, async (id) => {
    const r = await id.call(id.client.removeComponent, { component });
    const stopped = await forgetLabComponents(dir, r.removed);
    if (o.json) return printJson({ removed: r.removed, revokedCredentialIds: r.revokedCredentialIds, stopped });
    console.log(`removed ${r.removed.join(", ") || component}; revoked ${r.revokedCredentialIds.length} credential(s)`);
    if (stopped.length) console.log(`stopped ${stopped.join(", ")} and dropped them from the lab`);
  });
}
