import { joinTokenStates } from "../common/enum-names/index.js";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import { CredentialVerifier, generateCredentialKeyPair, peekClaims, signCredential } from "../common/credentials/index.js";
import { CsLink } from "../common/cs-link/index.js";
import { bearerMetadata, channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer, configServerOptions } from "../config-server/index.js";
import {
  AdminServiceClient,
  ComponentRole,
  ConfigurationServiceClient,
  type Disk,
  IdentityServiceClient,
  type RegisterRequest,
  SiteLocation,
  JoinTokenState,
} from "../proto/index.js";
import { joinToken } from "./support/join-token.js";

const PASSPHRASE = "correct horse battery";
const DISK: Disk = { diskId: "d0", index: 0, sizeBytes: 1 << 20, imagePath: "/x", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" };
const BEAT = { health: 1, issues: [], machines: [], componentStats: undefined, processServerStats: undefined, segmentKeyId: "" };

/** A configuration server in-process, with the clients a test needs. */
class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), "srlab-credentials-"));
  server!: ConfigServer;
  cs!: ConfigurationServiceClient;
  admin!: AdminServiceClient;
  identity!: IdentityServiceClient;
  readonly links: CsLink[] = [];

  constructor(private readonly credentialTtlSeconds?: number) {}

  async start(): Promise<void> {
    this.server = new ConfigServer(
      configServerOptions.parse({
        dataDir: join(this.dir, "cs"),
        insecure: true,
        passphrase: PASSPHRASE,
        storage: { kind: "directory", directory: join(this.dir, "storage") },
        timeUnitSeconds: 1,
        credentialTtlSeconds: this.credentialTtlSeconds,
      }),
      silentLogger(),
    );
    await this.server.start();
    this.cs = new ConfigurationServiceClient(this.server.grpcAddress, channelCredentials(undefined));
    this.admin = new AdminServiceClient(this.server.grpcAddress, channelCredentials(undefined));
    this.identity = new IdentityServiceClient(this.server.grpcAddress, channelCredentials(undefined));
  }

  async stop(): Promise<void> {
    for (const l of this.links) await l.stop();
    this.cs.close();
    this.admin.close();
    this.identity.close();
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  register(req: Partial<RegisterRequest> & { role: ComponentRole; name: string }, credential?: string) {
    const full: RegisterRequest = { passphrase: "", joinToken: "", address: "127.0.0.1:1", location: SiteLocation.SITE_LOCATION_ON_PREMISES, disks: [DISK], version: "test", certificateRequest: "", hostName: "", metricsAddress: "", ...req };
    return unaryCall(this.cs, this.cs.register, full, credential);
  }

  /** A component's link to this server, as a daemon makes it. */
  link(o: { role: ComponentRole; name: string; joinToken?: string; passphrase?: string; configFile?: string; verifier?: CredentialVerifier }): CsLink {
    const link = new CsLink({ address: this.server.grpcAddress, logger: silentLogger(), heartbeatIntervalMs: 200, disks: [DISK], ...o });
    this.links.push(link);
    return link;
  }

  heartbeat(credential: string) {
    return unaryCall(this.cs, this.cs.heartbeat, BEAT, credential);
  }

  listMachines(credential: string) {
    return unaryCall(this.admin, this.admin.listMachines, {}, credential);
  }
}

function code(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  return p.then(
    () => ({ code: 0, details: "" }),
    (e: grpc.ServiceError) => ({ code: e.code, details: e.details }),
  );
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

describe("credentials only the configuration server can sign", () => {
  const lab = new Lab();
  beforeAll(() => lab.start());
  afterAll(() => lab.stop());

  test("an agent host cannot mint an admin credential (issue 14, item 1)", async () => {
    // Everything an agent host has: the passphrase from its config, and what registration gives it.
    const agent = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-host", passphrase: PASSPHRASE });
    expect(agent.credentialPublicKey.length).toBe(0);
    expect(agent.segmentKey.length).toBe(0);
    expect(agent.storage).toBeUndefined();

    // The old route to the credential key: register as a process server with the passphrase.
    const asPs = await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "evil-ps", passphrase: PASSPHRASE }));
    expect(asPs.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(asPs.details).toMatch(/join token .* passphrase registers agents only/);
    const asMt = await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MASTER_TARGET, name: "evil-mt", passphrase: PASSPHRASE }));
    expect(asMt.code).toBe(grpc.status.PERMISSION_DENIED);

    // Its own credential with the role changed to admin: the signature no longer matches.
    const [prefix, body, signature] = agent.credential.split(".");
    const claims = JSON.parse(Buffer.from(body!, "base64url").toString());
    const promoted = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, role: "admin", id: "" })).toString("base64url")}.${signature}`;
    expect((await code(lab.listMachines(promoted))).code).toBe(grpc.status.UNAUTHENTICATED);

    // Even a process server, which holds the verification key, cannot sign with it.
    const ps = await lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-honest", joinToken: await joinToken(lab.server, "process-server") });
    expect(ps.credentialPublicKey.length).toBeGreaterThan(0);
    const hmacAdmin = `admin.${createHmac("sha256", ps.credentialPublicKey).update("admin").digest("base64url")}`;
    expect((await code(lab.listMachines(hmacAdmin))).code).toBe(grpc.status.UNAUTHENTICATED);
    const now = Math.floor(Date.now() / 1000);
    const selfSigned = signCredential(generateCredentialKeyPair().privateKey, { jti: "x", role: "admin", id: "", iat: now, exp: now + 60 });
    const forged = await code(lab.listMachines(selfSigned));
    expect(forged.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(forged.details).toMatch(/not issued by this deployment's configuration server/);

    // The real admin credential still works, and the forgeries registered nothing.
    const { machines } = await lab.listMachines(lab.server.adminCredential);
    expect(machines.map((m) => m.name)).toEqual(["vm-host"]);
  });

  test("a daemon's config holds only its own credential after registering", async () => {
    const file = join(lab.dir, "agent.yaml");
    const token = await joinToken(lab.server, "agent");
    writeFileSync(file, `# my agent\nname: vm-config\nconfigServer:\n  address: ${lab.server.grpcAddress}\n  joinToken: ${token}\n  passphrase: ${PASSPHRASE}\n`);
    const link = lab.link({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-config", joinToken: token, configFile: file });
    await link.register();
    const text = readFileSync(file, "utf8");
    const doc = parseYaml(text) as { configServer: Record<string, string> };
    expect(doc.configServer).toEqual({ address: lab.server.grpcAddress, credential: link.credential });
    expect(text).toContain("# my agent");
    expect(text).not.toContain(PASSPHRASE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Restarted with that config, it registers with the credential alone.
    const restarted = new CsLink({ address: lab.server.grpcAddress, logger: silentLogger(), role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-config", credential: doc.configServer.credential, configFile: file, disks: [DISK] });
    lab.links.push(restarted);
    const r = await restarted.register();
    expect(r.machineId).toBe(link.registered.machineId);
    // The credential registers its own component only.
    const other = await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-someone-else" }, restarted.credential));
    expect(other.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  test("the passphrase registers new machines only: an existing machine's agent needs its credential or a join token", async () => {
    const first = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken", passphrase: PASSPHRASE });
    // Anyone with the passphrase tried to take the machine over (a new credential, the old one superseded).
    const takeover = await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken", passphrase: PASSPHRASE }));
    expect(takeover.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(takeover.details).toMatch(/vm-taken" is already registered: .*own credential or a join token/);
    // As the agent in Azure of that machine, too.
    const inAzure = await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken", passphrase: PASSPHRASE, location: SiteLocation.SITE_LOCATION_AZURE }));
    expect(inAzure.code).toBe(grpc.status.PERMISSION_DENIED);
    // A wrong passphrase still says only that, whether or not the machine exists.
    expect((await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken", passphrase: "guess" }))).code).toBe(grpc.status.UNAUTHENTICATED);
    // The refused attempts superseded nothing: the agent's credential still works.
    expect((await code(lab.heartbeat(first.credential))).code).toBe(0);
    // Its own credential re-registers it, and so does a join token of the agent role.
    const again = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken" }, first.credential);
    expect(again.machineId).toBe(first.machineId);
    const byToken = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-taken", joinToken: await joinToken(lab.server, "agent") });
    expect(byToken.machineId).toBe(first.machineId);
  });
});

describe("join tokens", () => {
  const lab = new Lab();
  beforeAll(() => lab.start());
  afterAll(() => lab.stop());

  const registerPs = (name: string, token: string) => code(lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name, joinToken: token }));

  test("a single-use token registers one component; reuse is refused", async () => {
    const token = await joinToken(lab.server, "process-server");
    expect((await registerPs("ps-a", token)).code).toBe(0);
    const reused = await registerPs("ps-b", token);
    expect(reused.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(reused.details).toMatch(/join token \S+ was already used: create a new one with srlab token create/);
  });

  test("an expired token is refused", async () => {
    const token = await joinToken(lab.server, "process-server", { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1_100));
    const r = await registerPs("ps-late", token);
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toMatch(/expired at/);
  });

  test("a revoked token is refused; a token of another role is refused; a guessed secret is refused", async () => {
    const token = await joinToken(lab.server, "process-server");
    await unaryCall(lab.identity, lab.identity.revokeJoinToken, { tokenId: token.split(".")[0]! }, lab.server.adminCredential);
    expect((await registerPs("ps-revoked", token)).details).toMatch(/was revoked/);
    const agentToken = await joinToken(lab.server, "agent");
    const wrongRole = await registerPs("ps-agent-token", agentToken);
    expect(wrongRole.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(wrongRole.details).toMatch(/registers a agent, not a process-server/);
    const guessed = await registerPs("ps-guess", `${agentToken.split(".")[0]}.AAAAAAAAAAAAAAAAAAAAAAAAAAA`);
    expect(guessed.details).toMatch(/not recognised/);
    // The refused attempts left the agent token unused.
    expect((await code(lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-token", joinToken: agentToken }))).code).toBe(0);
  });

  test("a reusable token registers several components until it expires; list shows each token's state", async () => {
    const token = await joinToken(lab.server, "process-server", { reusable: true });
    expect((await registerPs("ps-r1", token)).code).toBe(0);
    expect((await registerPs("ps-r2", token)).code).toBe(0);
    const { tokens } = await unaryCall(lab.identity, lab.identity.listJoinTokens, {}, lab.server.adminCredential);
    const states = new Map(tokens.map((t) => [t.tokenId, t]));
    expect(states.get(token.split(".")[0]!)).toMatchObject({ state: JoinTokenState.JOIN_TOKEN_STATE_ACTIVE, uses: 2, singleUse: false });
    expect(new Set(tokens.map((t) => joinTokenStates.name(t.state)))).toEqual(new Set(["used", "expired", "revoked", "active"]));
  });
});

describe("expiry, revocation and rotation", () => {
  const lab = new Lab(2);
  beforeAll(() => lab.start());
  afterAll(() => lab.stop());

  test("an expired credential is refused; a running component renews its own before that", async () => {
    const agent = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-expiring", passphrase: PASSPHRASE });
    const link = lab.link({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-renewing", passphrase: PASSPHRASE });
    await link.register();
    const first = peekClaims(link.credential)!.jti;
    link.start();
    await lab.heartbeat(agent.credential);
    await new Promise((r) => setTimeout(r, 2_300));
    const expired = await code(lab.heartbeat(agent.credential));
    expect(expired.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(expired.details).toMatch(/expired at/);
    // The link renewed at half-life: its current credential works and is a new one.
    expect(peekClaims(link.credential)!.jti).not.toBe(first);
    expect((await code(lab.heartbeat(link.credential))).code).toBe(0);
    // The admin credential the server writes is renewed too.
    expect((await code(lab.listMachines(lab.server.adminCredential))).code).toBe(0);
  });
});

describe("revocation and rotation", () => {
  const lab = new Lab();
  beforeAll(() => lab.start());
  afterAll(() => lab.stop());

  test("srlab remove revokes at once at the configuration server and within a heartbeat at process servers", async () => {
    const verifier = new CredentialVerifier();
    const ps = lab.link({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-verifier", joinToken: await joinToken(lab.server, "process-server"), verifier });
    await ps.register();
    ps.start();
    const agent = await lab.register({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-removed", passphrase: PASSPHRASE });
    const metadata = bearerMetadata(agent.credential);
    expect(verifier.verify(metadata).subject).toBe(`agent/${agent.machineId}`);

    const removed = await unaryCall(lab.identity, lab.identity.removeComponent, { component: "vm-removed" }, lab.server.adminCredential);
    expect(removed.removed).toEqual(["vm-removed"]);
    expect(removed.revokedCredentialIds).toEqual([peekClaims(agent.credential)!.jti]);
    const atServer = await code(lab.heartbeat(agent.credential));
    expect(atServer.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(atServer.details).toMatch(/revoked .*component removed/);
    const { machines } = await lab.listMachines(lab.server.adminCredential);
    expect(machines.map((m) => m.name)).not.toContain("vm-removed");
    // The process server refuses it from its next heartbeat on (200 ms here, 1 s in a lab).
    await until("the process server to learn of the revocation", () => {
      try {
        verifier.verify(metadata);
        return false;
      } catch (err) {
        return /revoked/.test((err as Error).message);
      }
    });
  });

  test("a revoked credential's command stream is cut: it receives no further command", async () => {
    const ps = await lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-watching", joinToken: await joinToken(lab.server, "process-server") });
    const stream = lab.cs.watchCommands({}, bearerMetadata(ps.credential));
    const ended = new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
    await new Promise((r) => setTimeout(r, 300));
    // Registering again (here with its own credential) supersedes, and so revokes, the earlier one.
    const again = await lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-watching" }, ps.credential);
    const err = await ended;
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err.details).toMatch(/was revoked \(superseded by a new registration\); this stream is closed/);
    // The new credential's stream is served.
    const fresh = lab.cs.watchCommands({}, bearerMetadata(again.credential));
    const outcome = await new Promise<number>((resolve) => {
      fresh.on("error", (e: grpc.ServiceError) => resolve(e.code));
      setTimeout(() => resolve(0), 500);
    });
    fresh.cancel();
    expect(outcome).toBe(0);
  });

  test("rotation: the component takes a new credential, then the old one is revoked", async () => {
    const file = join(lab.dir, "ps.yaml");
    const token = await joinToken(lab.server, "process-server");
    writeFileSync(file, `configServer:\n  address: ${lab.server.grpcAddress}\n  joinToken: ${token}\n`);
    const link = lab.link({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-rotating", joinToken: token, configFile: file, verifier: new CredentialVerifier() });
    await link.register();
    link.start(async () => undefined);
    const old = link.credential;
    // Rotation needs the component's command stream attached.
    await new Promise((r) => setTimeout(r, 300));
    const r = await unaryCall(lab.identity, lab.identity.rotateCredential, { component: "ps-rotating", timeoutSeconds: 10 }, lab.server.adminCredential, 20_000);
    expect(r.revokedCredentialIds).toEqual([peekClaims(old)!.jti]);
    expect(peekClaims(link.credential)!.jti).toBe(r.credential!.credentialId);
    expect((parseYaml(readFileSync(file, "utf8")) as { configServer: { credential: string } }).configServer.credential).toBe(link.credential);
    expect((await code(lab.heartbeat(old))).details).toMatch(/revoked .*rotated/);
    expect((await code(lab.heartbeat(link.credential))).code).toBe(0);
  });

  test("rotating a component that is not running changes nothing", async () => {
    const ps = await lab.register({ role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, name: "ps-offline", joinToken: await joinToken(lab.server, "process-server") });
    const r = await code(unaryCall(lab.identity, lab.identity.rotateCredential, { component: "ps-offline", timeoutSeconds: 2 }, lab.server.adminCredential));
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toMatch(/not connected .*nothing was changed/);
    expect((await code(lab.heartbeat(ps.credential))).code).toBe(0);
  });

  test("a protected machine is not removed", async () => {
    const link = lab.link({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "vm-protected", passphrase: PASSPHRASE });
    await link.register();
    link.start(async () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await unaryCall(lab.admin, lab.admin.enableProtection, { machine: "vm-protected", policyName: "" }, lab.server.adminCredential);
    const r = await code(unaryCall(lab.identity, lab.identity.removeComponent, { component: "vm-protected" }, lab.server.adminCredential));
    expect(r.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.details).toMatch(/disable its protection before removing it/);
    expect((await code(lab.heartbeat(link.credential))).code).toBe(0);
  });
});
