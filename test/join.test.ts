import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { joinTokenRoles, joinTokenStates } from "../common/enum-names/index.js";
import { caHash } from "../common/credentials/index.js";
import { channelCredentials, channelOptions, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { checkCertificateRequest, createCertificateRequest, createLabCa, ensureLabPki, type LabCa, signCertificateRequest } from "../common/tls/index.js";
import { ConfigServer, configServerOptions } from "../config-server/index.js";
import { discoverCa, parseCaHash, planJoin } from "../cli/join/index.js";
import { applyHeadNetwork, headCertificateNames, joinAddress, type LabComponent, LabLayout, type LabManifest, parseHeadNetwork } from "../cli/lab/index.js";
import { parse, stringify } from "yaml";
import { AdminServiceClient, ComponentRole, ConfigurationServiceClient, IdentityServiceClient, type RegisterRequest, SiteLocation } from "../proto/index.js";

describe("certificate requests", () => {
  let ca: LabCa;
  beforeAll(async () => {
    ca = await createLabCa({ commonName: "test CA" });
  });

  test("the CA signs the requester's own key for the names it asked, under the name the signer decides", async () => {
    const req = await createCertificateRequest({ commonName: "whatever-i-like", dnsNames: ["host2.lab"], ipAddresses: ["127.0.0.2"] });
    const checked = await checkCertificateRequest(req.csrPem);
    const cert = new X509Certificate(await signCertificateRequest(ca, checked, { commonName: "host2" }));
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    // The private key that stayed with the requester matches the certificate.
    expect(cert.checkPrivateKey(createPrivateKey(req.keyPem))).toBe(true);
    expect(cert.subject).toContain("CN=host2");
    expect(cert.subjectAltName).toContain("DNS:host2.lab");
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.2");
    expect(cert.ca).toBe(false);
  });

  test("a request whose signature does not match its key is refused", async () => {
    const a = await createCertificateRequest({ commonName: "a", ipAddresses: ["127.0.0.2"] });
    const b64 = a.csrPem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
    const der = Buffer.from(b64, "base64");
    der[der.length - 5]! ^= 0xff; // inside the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(checkCertificateRequest(tampered)).rejects.toThrow(/signature|PKCS#10/);
    await expect(checkCertificateRequest("not a request")).rejects.toThrow("not a PEM PKCS#10 request");
  });
});

describe("join flags", () => {
  const env = { uid: 1000, hostName: "host2.example" };
  const ok = { configServer: "127.0.0.1:7443", token: "ABCDEFGH.abcdefghijklmnopqrstuvwxyz0", caHash: `sha256:${"a".repeat(64)}`, dir: "/tmp/x" };

  test("the CA hash must be sha256 and 64 hex digits", () => {
    expect(parseCaHash(`SHA256:${"AB".repeat(32)}`)).toBe(`sha256:${"ab".repeat(32)}`);
    expect(() => parseCaHash("sha256:abc")).toThrow("--ca-hash must be sha256: followed by 64 hex digits");
    expect(() => parseCaHash(`md5:${"a".repeat(64)}`)).toThrow("--ca-hash");
  });

  test("each wrong flag is one line naming it", () => {
    expect(() => planJoin("router", ok, env)).toThrow('ROLE must be one of agent, process-server, master-target, got "router"');
    expect(() => planJoin("agent", { ...ok, configServer: "nohost" }, env)).toThrow("--config-server must be HOST:PORT");
    expect(() => planJoin("agent", { ...ok, token: "x" }, env)).toThrow("--token must be a join token");
    expect(() => planJoin("agent", { ...ok, listen: "0.0.0.0" }, env)).toThrow("wildcard");
    expect(() => planJoin("agent", { ...ok, detach: true, service: true }, env)).toThrow("--detach and --service exclude each other");
    expect(() => planJoin("process-server", { ...ok, disk: ["/tmp/d.img:1GiB"] }, env)).toThrow("--disk is for agents");
    expect(() => planJoin("agent", { ...ok, disk: ["/nonexistent/d.img"] }, env)).toThrow("give its size to create it");
    expect(() => planJoin("agent", { ...ok, disk: ["/tmp/d.img:1000"] }, env)).toThrow("multiple of 512");
  });

  test("defaults: the host's name, files under --dir, one 1 GiB disk", () => {
    const plan = planJoin("agent", { ...ok, listen: "127.0.0.2" }, env);
    expect(plan.name).toBe("host2");
    expect(plan.listen).toEqual({ host: "127.0.0.2", port: 0 });
    // HOST:0 picks a free port too; a port out of range is refused.
    expect(planJoin("agent", { ...ok, listen: "127.0.0.3:0" }, env).listen).toEqual({ host: "127.0.0.3", port: 0 });
    expect(planJoin("agent", { ...ok, listen: "127.0.0.3:7443" }, env).listen).toEqual({ host: "127.0.0.3", port: 7443 });
    expect(() => planJoin("agent", { ...ok, listen: "127.0.0.3:70000" }, env)).toThrow("--listen must be HOST or HOST:PORT");
    expect(plan.paths.configFile).toBe("/tmp/x/config/host2.yaml");
    expect(plan.disks).toEqual([{ path: "/tmp/x/data/host2/disk-0.img", sizeBytes: 1024 ** 3 }]);
    expect(planJoin("process-server", ok, env).name).toBe("process-server-host2");
    // As root without --dir: the config and keys in /etc/srlab, the state in /var/lib/srlab.
    const root = planJoin("agent", { ...ok, dir: undefined }, { uid: 0, hostName: "h" });
    expect(root.paths.configFile).toBe("/etc/srlab/h.yaml");
    expect(root.paths.keyFile).toBe("/etc/srlab/pki/h-key.pem");
    expect(root.paths.dataDir).toBe("/var/lib/srlab/data/h");
  });
});

describe("joining a configuration server over TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "srlab-join-"));
  let server: ConfigServer;
  let caPem: string;
  let address: { host: string; port: number };
  let cs: ConfigurationServiceClient;
  let identity: IdentityServiceClient;
  let admin: AdminServiceClient;

  beforeAll(async () => {
    const pki = await ensureLabPki(join(dir, "pki"), ["config-server"]);
    caPem = pki.ca.certPem;
    server = new ConfigServer(
      configServerOptions.parse({
        dataDir: join(dir, "cs"),
        listen: { host: "127.0.0.1", port: 0 },
        tls: { caFile: pki.caFile, ...pki.components["config-server"] },
        caKeyFile: join(dir, "pki", "ca-key.pem"),
        passphrase: "correct horse battery",
        storage: { kind: "directory", directory: join(dir, "storage") },
        timeUnitSeconds: 1,
        dashboard: { enabled: false },
      }),
      silentLogger(),
    );
    await server.start();
    address = { host: "127.0.0.1", port: Number(server.grpcAddress.split(":").pop()) };
    const creds = () => channelCredentials({ caFile: pki.caFile });
    cs = new ConfigurationServiceClient(server.grpcAddress, creds(), channelOptions(server.grpcAddress));
    identity = new IdentityServiceClient(server.grpcAddress, creds(), channelOptions(server.grpcAddress));
    admin = new AdminServiceClient(server.grpcAddress, creds(), channelOptions(server.grpcAddress));
  });

  afterAll(async () => {
    for (const c of [cs, identity, admin]) c?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const token = async (role: string) => (await unaryCall(identity, identity.createJoinToken, { role: joinTokenRoles.parse(role), ttlSeconds: 600, reusable: false, description: "" }, server.adminCredential)).token;
  const tokenState = async (t: string) => {
    const { tokens } = await unaryCall(identity, identity.listJoinTokens, {}, server.adminCredential);
    const state = tokens.find((x) => x.tokenId === t.split(".")[0])?.state;
    return state === undefined ? undefined : joinTokenStates.name(state);
  };
  const names = async () => (await unaryCall(admin, admin.listComponents, {}, server.adminCredential)).components.map((c) => c.name);
  const request = (over: Partial<RegisterRequest>): RegisterRequest => ({
    passphrase: "",
    joinToken: "",
    role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
    name: "ps-joined",
    address: "127.0.0.3:1",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [],
    version: "test",
    certificateRequest: "",
    hostName: "host3",
    metricsAddress: "127.0.0.3:2",
    ...over,
  });

  test("the CA the server presents in its handshake is found by its pinned hash", async () => {
    expect(await discoverCa(address, caHash(caPem))).toBe(new X509Certificate(caPem).toString());
  });

  test("a wrong pin stops before anything is sent: the token stays unused and nothing registers", async () => {
    const t = await token("agent");
    await expect(discoverCa(address, `sha256:${"0".repeat(64)}`)).rejects.toThrow("does not present the CA sha256:0000");
    expect(await tokenState(t)).toBe("active");
    expect(await names()).not.toContain("ps-joined");
  });

  test("a certificate request with a valid token is signed by the lab CA; the token is used up", async () => {
    const t = await token("process-server");
    const req = await createCertificateRequest({ commonName: "ps-joined", ipAddresses: ["127.0.0.3"] });
    const r = await unaryCall(cs, cs.register, request({ joinToken: t, certificateRequest: req.csrPem }));
    const cert = new X509Certificate(r.certificate);
    expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(req.keyPem))).toBe(true);
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.3");
    expect(await tokenState(t)).toBe("used");
    const joined = (await unaryCall(admin, admin.listComponents, {}, server.adminCredential)).components.find((c) => c.name === "ps-joined");
    expect(joined).toMatchObject({ address: "127.0.0.3:1", hostName: "host3", metricsAddress: "127.0.0.3:2" });
    // Used once: the same token joins nothing else.
    const again = await createCertificateRequest({ commonName: "x", ipAddresses: ["127.0.0.4"] });
    const refused = await unaryCall(cs, cs.register, request({ name: "ps-other", joinToken: t, certificateRequest: again.csrPem })).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(16);
    expect((refused as grpc.ServiceError).details).toContain("was already used");
    expect(await names()).not.toContain("ps-other");
  });

  test("no certificate without a join token, and a bad request registers nothing and keeps the token", async () => {
    const req = await createCertificateRequest({ commonName: "m", ipAddresses: ["127.0.0.5"] });
    const byPassphrase = await unaryCall(
      cs,
      cs.register,
      request({ role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, name: "agent-by-passphrase", passphrase: "correct horse battery", certificateRequest: req.csrPem }),
    ).catch((e: grpc.ServiceError) => e);
    expect((byPassphrase as grpc.ServiceError).code).toBe(7);
    const t = await token("process-server");
    const bad = await unaryCall(cs, cs.register, request({ name: "ps-bad", joinToken: t, certificateRequest: "garbage" })).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).toBe(3);
    expect(await tokenState(t)).toBe("active");
    expect(await names()).not.toContain("agent-by-passphrase");
    expect(await names()).not.toContain("ps-bad");
  });
});

describe("head node network (srlab up --listen/--advertise)", () => {
  const dir = mkdtempSync(join(tmpdir(), "srlab-head-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("configs follow --listen and --advertise, and a resumed lab keeps them", async () => {
    const layout = new LabLayout(dir);
    mkdirSync(layout.configDir, { recursive: true });
    const file = (n: string) => join(layout.configDir, `${n}.yaml`);
    writeFileSync(file("config-server"), stringify({ name: "config-server", listen: { host: "127.0.0.1", port: 7000 }, metrics: { host: "127.0.0.1", port: 0 }, storage: { kind: "azure", connectionString: "x" } }));
    writeFileSync(file("process-server-1"), stringify({ name: "process-server-1", listen: { host: "127.0.0.1", port: 7001 }, configServer: { address: "127.0.0.1:7000", credential: "c" } }));
    writeFileSync(file("machine-1"), stringify({ name: "machine-1", listen: { host: "127.0.0.1", port: 7002 }, configServer: { address: "127.0.0.1:7000", credential: "c" } }));
    const component = (name: string, role: LabComponent["role"], grpcPort: number): LabComponent => ({ name, role, configFile: file(name), logFile: "", readyFile: "", grpcPort, pid: 0 });
    const manifest: LabManifest = {
      version: 1,
      passphrase: "p",
      timeUnitSeconds: 1,
      storage: { kind: "azure", azuritePort: 10000 },
      configServerAddress: "127.0.0.1:7000",
      caFile: "",
      components: [component("config-server", "config-server", 7000), component("process-server-1", "process-server", 7001), component("machine-1", "agent", 7002)],
    };
    expect(joinAddress(manifest)).toBe("127.0.0.1:7000");
    await applyHeadNetwork(layout, manifest, parseHeadNetwork("0.0.0.0", "head.lab,192.0.2.10"));
    const read = (n: string) => parse(readFileSync(file(n), "utf8"));
    expect(read("config-server").listen.host).toBe("0.0.0.0");
    expect(read("config-server").caKeyFile).toBe(join(layout.pkiDir, "ca-key.pem"));
    // Joined process servers write to Azurite on the head: its address is the advertised one.
    expect(read("config-server").storage.connectionString).toContain("BlobEndpoint=http://head.lab:10000/");
    expect(read("process-server-1")).toMatchObject({ listen: { host: "0.0.0.0" }, metrics: { host: "0.0.0.0" }, advertisedAddress: "head.lab:7001" });
    // The lab's own tools and daemons keep dialling loopback; joiners get the advertised name.
    expect(read("machine-1").configServer.address).toBe("127.0.0.1:7000");
    expect(read("machine-1").listen.host).toBe("127.0.0.1");
    expect(joinAddress(manifest)).toBe("head.lab:7000");
    expect(headCertificateNames(manifest)).toEqual({ dnsNames: ["head.lab"], ipAddresses: ["192.0.2.10"] });
    // srlab up without the flags: nothing changes.
    await applyHeadNetwork(layout, manifest, parseHeadNetwork(undefined, undefined));
    expect(joinAddress(manifest)).toBe("head.lab:7000");
    expect(read("process-server-1").advertisedAddress).toBe("head.lab:7001");
  });

  test("bad values are refused before anything starts", () => {
    expect(() => parseHeadNetwork("not an address!", undefined)).toThrow("--listen must be an address");
    expect(() => parseHeadNetwork(undefined, ",")).toThrow("--advertise needs at least one");
    expect(() => parseHeadNetwork(undefined, "0.0.0.0")).toThrow("wildcard");
  });
});
