import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, test } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { AdminServiceClient, ComponentRole, ConfigurationServiceClient, Health, SiteLocation } from "../proto/index.js";
import { channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer, configServerOptions } from "../config-server/index.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-cs-"));
const options = configServerOptions.parse({
  name: "config-server",
  dataDir: join(dir, "cs"),
  insecure: true,
  passphrase: "correct horse battery",
  storage: { kind: "directory", directory: join(dir, "storage") },
  timeUnitSeconds: 1,
});
let server: ConfigServer;
let client: ConfigurationServiceClient;
let adminClient: AdminServiceClient;

async function start(): Promise<void> {
  server = new ConfigServer(options, silentLogger());
  await server.start();
  client = new ConfigurationServiceClient(server.grpcAddress, channelCredentials(undefined));
  adminClient = new AdminServiceClient(server.grpcAddress, channelCredentials(undefined));
}

async function stop(): Promise<void> {
  client.close();
  adminClient.close();
  await server.stop();
}

const register = (passphrase: string, name: string, role = ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) =>
  unaryCall(client, client.register, {
    passphrase,
    role,
    name,
    address: "127.0.0.1:1",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [],
    version: "test",
  });

beforeAll(start);
afterAll(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the deployment passphrase registers a component and gives it a working credential", async () => {
  const r = await register("correct horse battery", "ps-1");
  assert.ok(r.componentId);
  assert.ok(r.credential.startsWith(`process-server/${r.componentId}.`));
  assert.equal(r.storage?.kind, "directory");
  assert.equal(r.segmentKey.length, 32);
  await unaryCall(client, client.heartbeat, { health: Health.HEALTH_NORMAL, issues: [], machines: [], componentStats: undefined, processServerStats: undefined }, r.credential);
});

test("a wrong passphrase is UNAUTHENTICATED and registers nothing", async () => {
  await assert.rejects(register("wrong", "intruder"), (err: grpc.ServiceError) => {
    assert.equal(err.code, 16);
    assert.match(err.details, /wrong deployment passphrase/);
    return true;
  });
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  const { components } = await unaryCall(adminClient, adminClient.listComponents, {}, admin);
  assert.ok(!components.some((c) => c.name === "intruder"));
});

test("forged and missing credentials are refused; admin calls need the admin credential", async () => {
  await assert.rejects(
    unaryCall(client, client.heartbeat, { health: 1, issues: [], machines: [], componentStats: undefined, processServerStats: undefined }, "process-server/x.AAAA"),
    (err: grpc.ServiceError) => err.code === 16 && /not issued by this configuration server/.test(err.details),
  );
  await assert.rejects(unaryCall(adminClient, adminClient.listMachines, {}), (err: grpc.ServiceError) => err.code === 16);
  const ps = await register("correct horse battery", "ps-1");
  await assert.rejects(unaryCall(adminClient, adminClient.listMachines, {}, ps.credential), (err: grpc.ServiceError) => err.code === 7);
});

test("an agent registration creates its machine; a restarted configuration server keeps everything", async () => {
  const agent = await unaryCall(client, client.register, {
    passphrase: "correct horse battery",
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name: "vm-1",
    address: "",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [{ diskId: "d0", index: 0, sizeBytes: 1 << 20, imagePath: "/x", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" }],
    version: "test",
  });
  assert.ok(agent.machineId);
  await stop();
  await start();
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  const { machines } = await unaryCall(adminClient, adminClient.listMachines, {}, admin);
  assert.deepEqual(machines.map((m) => m.name), ["vm-1"]);
  assert.equal(machines[0]!.disks[0]!.sizeBytes, 1 << 20);
  // Credentials issued before the restart still verify: the key is part of the persisted state.
  await unaryCall(client, client.heartbeat, { health: 1, issues: [], machines: [], componentStats: undefined, processServerStats: undefined }, agent.credential);
  const { policies } = await unaryCall(adminClient, adminClient.listPolicies, {}, admin);
  const failback = policies.find((p) => p.failback)!;
  assert.equal(failback.rpoThresholdSeconds, 15);
  assert.equal(failback.recoveryPointRetentionSeconds, 24 * 60);
});
