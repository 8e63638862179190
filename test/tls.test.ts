import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, unlink } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { createLabCa, ensureLabPki, issueCertificate, type LabCa, type PemPair } from "../common/tls/index.js";

interface Handshake {
  authorized: boolean;
  error?: string;
}

/** One TLS handshake against `port`; resolves with the outcome instead of throwing. */
// `family` is passed through to net.connect but missing from the tls option typings.
function handshake(options: tls.ConnectionOptions & { family?: 4 | 6 }): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect(options, () => {
      const authorized = socket.authorized;
      socket.end();
      resolve({ authorized });
    });
    socket.on("error", (err) => resolve({ authorized: false, error: err.message }));
  });
}

async function listen(server: tls.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

describe("lab certificate authority", () => {
  let ca: LabCa;
  let otherCa: LabCa;
  let serverPair: PemPair;
  let clientPair: PemPair;
  let server: tls.Server;
  let port: number;

  beforeAll(async () => {
    ca = await createLabCa({ commonName: "srlab test CA" });
    otherCa = await createLabCa({ commonName: "someone else's CA" });
    serverPair = await issueCertificate(ca, {
      commonName: "process-server",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      usage: "server",
    });
    clientPair = await issueCertificate(ca, { commonName: "mobility-agent", usage: "client" });
    server = tls.createServer({ cert: serverPair.certPem, key: serverPair.keyPem }, (socket) => socket.end());
    port = await listen(server);
  });

  afterAll(() => server.close());

  test("CA and leaf certificates carry the expected extensions", () => {
    const caCert = new X509Certificate(ca.certPem);
    const leaf = new X509Certificate(serverPair.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(caCert));
    assert.ok(leaf.verify(caCert.publicKey));
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.match(leaf.subjectAltName ?? "", /DNS:localhost/);
    assert.match(leaf.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
    assert.ok(leaf.keyUsage?.includes("1.3.6.1.5.5.7.3.1"), "server leaf has serverAuth");
    assert.ok(!leaf.keyUsage?.includes("1.3.6.1.5.5.7.3.2"), "server-only leaf lacks clientAuth");
    const years = (Date.parse(leaf.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000);
    assert.ok(years > 9.9 && years < 10.1, `validity ~10 years, got ${years}`);
    assert.notEqual(leaf.serialNumber, new X509Certificate(clientPair.certPem).serialNumber);
    assert.match(serverPair.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    // IPv6 loopback is in the SAN too.
    assert.equal(tls.checkServerIdentity("::1", { subjectaltname: leaf.subjectAltName } as tls.PeerCertificate), undefined);
  });

  test("a client trusting only the lab CA accepts the server at 127.0.0.1", async () => {
    const result = await handshake({ host: "127.0.0.1", port, ca: ca.certPem });
    assert.deepEqual(result, { authorized: true });
  });

  test("a client trusting only the lab CA accepts the server as localhost", async () => {
    // Resolve "localhost" for real; IPv4 because the server listens on 127.0.0.1 only.
    const result = await handshake({ host: "localhost", family: 4, port, ca: ca.certPem });
    assert.deepEqual(result, { authorized: true });
  });

  test("a client trusting another CA rejects the server", async () => {
    const result = await handshake({ host: "127.0.0.1", port, ca: otherCa.certPem });
    assert.equal(result.authorized, false);
    assert.ok(result.error, "handshake fails");
  });

  test("a name outside the SAN is rejected", async () => {
    const result = await handshake({ host: "127.0.0.1", servername: "example.com", port, ca: ca.certPem });
    assert.equal(result.authorized, false);
    assert.match(result.error ?? "", /example\.com/);
  });

  test("mutual TLS: the server accepts a lab client cert and refuses a foreign one", async () => {
    const mtls = tls.createServer(
      { cert: serverPair.certPem, key: serverPair.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      (socket) => socket.end("welcome"),
    );
    const mtlsPort = await listen(mtls);
    try {
      const greeting = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: mtlsPort, ca: ca.certPem, cert: clientPair.certPem, key: clientPair.keyPem });
        let text = "";
        socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      });
      assert.equal(greeting, "welcome");
      const foreign = await issueCertificate(otherCa, { commonName: "intruder", usage: "client" });
      const refused = await new Promise<boolean>((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port: mtlsPort, ca: ca.certPem, cert: foreign.certPem, key: foreign.keyPem });
        // TLS 1.3 reports the server's verdict after the client considers the handshake done, so
        // judge by whether the server's greeting arrives.
        socket.on("data", () => resolve(false));
        socket.on("error", () => resolve(true));
        socket.on("close", () => resolve(true));
      });
      assert.equal(refused, true);
    } finally {
      mtls.close();
    }
  });

  test("grpc-js accepts the issued certificates and keys", async () => {
    const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
    const definition: grpc.ServiceDefinition = {
      Echo: { path: "/srlab.test.Echo/Echo", requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
    };
    const both = await issueCertificate(ca, { commonName: "config-server", usage: "both" });
    const grpcServer = new grpc.Server();
    grpcServer.addService(definition, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
    const credentials = grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ private_key: Buffer.from(both.keyPem), cert_chain: Buffer.from(both.certPem) }], true);
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync("127.0.0.1:0", credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    const Client = grpc.makeGenericClientConstructor(definition, "Echo");
    const client = new Client(`localhost:${grpcPort}`, grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(clientPair.keyPem), Buffer.from(clientPair.certPem)));
    try {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        (client as unknown as { Echo: (req: Buffer, cb: (err: Error | null, res: Buffer) => void) => void }).Echo(Buffer.from("ping"), (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
      assert.equal(reply.toString(), "ping");
    } finally {
      client.close();
      grpcServer.forceShutdown();
    }
  });
});

describe("ensureLabPki", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "srlab-pki-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test("creates the CA and component certs, then reuses them", async () => {
    const first = await ensureLabPki(dir, ["config-server", "process-server"]);
    assert.equal(first.caFile, join(dir, "ca.pem"));
    assert.deepEqual(Object.keys(first.components).sort(), ["config-server", "process-server"]);
    assert.equal((await stat(join(dir, "ca-key.pem"))).mode & 0o777, 0o600);
    assert.equal((await stat(first.components["process-server"]!.keyFile)).mode & 0o777, 0o600);
    const caCert = new X509Certificate(await readFile(first.caFile));
    const psCert = new X509Certificate(await readFile(first.components["process-server"]!.certFile));
    assert.ok(psCert.checkIssued(caCert));
    assert.match(psCert.subject, /CN=process-server/);

    const psBefore = await readFile(first.components["process-server"]!.certFile, "utf8");
    const second = await ensureLabPki(dir, ["config-server", "process-server", "master-target"]);
    assert.equal(second.ca.certPem, first.ca.certPem, "same CA on the second run");
    assert.equal(await readFile(second.components["process-server"]!.certFile, "utf8"), psBefore, "existing cert reused");
    assert.ok(new X509Certificate(await readFile(second.components["master-target"]!.certFile)).checkIssued(caCert));
  });

  test("re-issues a component whose key went missing, and refuses half a CA", async () => {
    const pki = await ensureLabPki(dir, ["config-server"]);
    const certBefore = await readFile(pki.components["config-server"]!.certFile, "utf8");
    await unlink(pki.components["config-server"]!.keyFile);
    const again = await ensureLabPki(dir, ["config-server"]);
    assert.notEqual(await readFile(again.components["config-server"]!.certFile, "utf8"), certBefore);
    const key = await readFile(again.components["config-server"]!.keyFile, "utf8");
    const cert = await readFile(again.components["config-server"]!.certFile, "utf8");
    assert.doesNotThrow(() => tls.createSecureContext({ key, cert }), "key matches cert");

    await unlink(join(dir, "ca-key.pem"));
    await assert.rejects(ensureLabPki(dir, ["config-server"]), /incomplete lab CA/);
  });
});
