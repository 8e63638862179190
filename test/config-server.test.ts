import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, test } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import {
  AdminServiceClient,
  ComponentRole,
  ConfigurationServiceClient,
  Health,
  SiteLocation,
  type WatchCommandsResponse,
  StorageKind,
} from "../proto/index.js";
import { bearerMetadata, channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer } from "../config-server/index.js";
import { joinToken } from "./support/join-token.js";
import { testConfigServerOptions } from "./support/config-server-options.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-cs-"));
const options = testConfigServerOptions(dir);
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

/** A process server registers with a join token of its role (the passphrase registers agents only). */
const register = async (name: string, role = ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) =>
  unaryCall(client, client.register, {
    passphrase: "",
    joinToken: await joinToken(server, role === ComponentRole.COMPONENT_ROLE_MASTER_TARGET ? "master-target" : "process-server"),
    role,
    name,
    address: "127.0.0.1:1",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [],
    version: "test",
    certificateRequest: "",
    hostName: "",
    metricsAddress: "",
  });

beforeAll(start);
afterAll(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a join token registers a process server and gives it a working credential", async () => {
  const r = await register("ps-1");
  assert.ok(r.componentId);
  assert.ok(r.credential.startsWith("srl1."));
  assert.equal(r.credentialPublicKey.length, 44, "an Ed25519 public key in SPKI DER");
  assert.equal(r.storage?.kind, StorageKind.STORAGE_KIND_DIRECTORY);
  assert.equal(r.segmentKey.length, 32);
  await unaryCall(client, client.heartbeat, { health: Health.HEALTH_NORMAL, issues: [], machines: [], componentStats: undefined, processServerStats: undefined, segmentKeyId: "" }, r.credential);
});

test("a wrong passphrase is UNAUTHENTICATED and registers nothing", async () => {
  const intruder = unaryCall(client, client.register, {
    passphrase: "wrong",
    joinToken: "",
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name: "intruder",
    address: "",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [],
    version: "test",
    certificateRequest: "",
    hostName: "",
    metricsAddress: "",
  });
  await assert.rejects(intruder, (err: grpc.ServiceError) => {
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
    unaryCall(client, client.heartbeat, { health: 1, issues: [], machines: [], componentStats: undefined, processServerStats: undefined, segmentKeyId: "" }, "process-server/x.AAAA"),
    (err: grpc.ServiceError) => err.code === 16 && /malformed credential/.test(err.details),
  );
  await assert.rejects(unaryCall(adminClient, adminClient.listMachines, {}), (err: grpc.ServiceError) => err.code === 16);
  const ps = await register("ps-1");
  await assert.rejects(unaryCall(adminClient, adminClient.listMachines, {}, ps.credential), (err: grpc.ServiceError) => err.code === 7);
});

test("an agent registration creates its machine; a restarted configuration server keeps everything", async () => {
  const agent = await unaryCall(client, client.register, {
    passphrase: "correct horse battery",
    joinToken: "",
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name: "vm-1",
    address: "",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [{ diskId: "d0", index: 0, sizeBytes: 1 << 20, imagePath: "/x", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" }],
    version: "test",
    certificateRequest: "",
    hostName: "",
    metricsAddress: "",
  });
  assert.ok(agent.machineId);
  await stop();
  await start();
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  const { machines } = await unaryCall(adminClient, adminClient.listMachines, {}, admin);
  assert.deepEqual(machines.map((m) => m.name), ["vm-1"]);
  assert.equal(machines[0]!.disks[0]!.sizeBytes, 1 << 20);
  // Credentials issued before the restart still verify: the key is part of the persisted state.
  await unaryCall(client, client.heartbeat, { health: 1, issues: [], machines: [], componentStats: undefined, processServerStats: undefined, segmentKeyId: "" }, agent.credential);
  const { policies } = await unaryCall(adminClient, adminClient.listPolicies, {}, admin);
  const failback = policies.find((p) => p.failback)!;
  assert.equal(failback.rpoThresholdSeconds, 15);
  assert.equal(failback.recoveryPointRetentionSeconds, 24 * 60);
});

const registerAgent = (name: string) =>
  unaryCall(client, client.register, {
    passphrase: "correct horse battery",
    joinToken: "",
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name,
    address: "",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [{ diskId: "d0", index: 0, sizeBytes: 1 << 20, imagePath: "/x", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" }],
    version: "test",
    certificateRequest: "",
    hostName: "",
    metricsAddress: "",
  });

const denied = (err: grpc.ServiceError) => err.code === 7;

test("an agent cannot report a recovery point, nor a process server's point for another machine", async () => {
  const a = await registerAgent("vm-points-a");
  const b = await registerAgent("vm-points-b");
  const forged = {
    recoveryPointId: "forged",
    machineId: b.machineId,
    time: new Date(),
    sequence: 1,
    type: 1,
    tagName: "",
    disksCovered: 1,
    disksTotal: 1,
    processed: true,
    consistencyGroup: "",
    metadataMode: false,
    direction: 0,
  };
  for (const agent of [a, b]) {
    await assert.rejects(unaryCall(client, client.reportRecoveryPoint, { recoveryPoint: forged }, agent.credential), denied);
  }
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  const { recoveryPoints } = await unaryCall(adminClient, adminClient.listRecoveryPoints, { machine: "vm-points-b" }, admin);
  assert.ok(!recoveryPoints.some((p) => p.recoveryPointId === "forged"));
});

test("an agent cannot rewrite another machine's job, nor answer another component's command", async () => {
  const ps = await register("ps-1");
  const a = await registerAgent("vm-a");
  const b = await registerAgent("vm-b");
  // The job runs while vm-b's agent and the process server listen for commands.
  const streams = [ps, b].map((c) => client.watchCommands({}, bearerMetadata(c.credential)));
  const firstCommand = new Promise<WatchCommandsResponse>((resolve) => {
    for (const s of streams) {
      s.once("data", resolve);
      s.on("error", () => {});
    }
  });
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  // Enabling protection needs the agent's command stream attached.
  await new Promise((r) => setTimeout(r, 1_000));
  const { job } = await unaryCall(adminClient, adminClient.enableProtection, { machine: "vm-b", policyName: "" }, admin);
  const command = await firstCommand;
  const before = (await unaryCall(adminClient, adminClient.getJob, { jobId: job!.jobId }, admin)).job!;
  const rewrite = { jobId: job!.jobId, stepName: before.steps[0]!.name, stepState: 4, progressPercent: 100, message: "forged", bytesSent: 1e12 };
  await assert.rejects(unaryCall(client, client.updateJob, rewrite, a.credential), denied);
  const after = (await unaryCall(adminClient, adminClient.getJob, { jobId: job!.jobId }, admin)).job!;
  assert.equal(after.bytesSent, before.bytesSent);
  assert.ok(!after.steps.some((s) => s.message === "forged"));
  // The job's command went to vm-b's agent or its process server; vm-a's agent cannot answer it.
  const answer = { commandId: command.commandId, success: true, error: "", result: undefined };
  await assert.rejects(unaryCall(client, client.reportCommandResult, answer, a.credential), denied);
  for (const s of streams) s.cancel();
});

test("a command is answered only with a result of its own kind", async () => {
  const ps = await register("ps-1");
  const c = await registerAgent("vm-c");
  const streams = [ps, c].map((x) => client.watchCommands({}, bearerMetadata(x.credential)));
  for (const s of streams) s.on("error", () => {});
  const toAgent = new Promise<WatchCommandsResponse>((resolve) => streams[1]!.once("data", resolve));
  const admin = readFileSync(join(options.dataDir, "admin.credential"), "utf8").trim();
  await new Promise((r) => setTimeout(r, 1_000));
  await unaryCall(adminClient, adminClient.enableProtection, { machine: "vm-c", policyName: "" }, admin);
  const command = await toAgent;
  assert.equal(command.command?.$case, "assignment");
  const counts = { endSequence: 1, blocksCompared: 1, blocksSent: 0, zeroBlocksSent: 0, rangesSent: 0, bytesSent: 0 };
  const wrong = { commandId: command.commandId, success: true, error: "", result: { kind: { $case: "startSync" as const, value: counts } } };
  await assert.rejects(unaryCall(client, client.reportCommandResult, wrong, c.credential), (err: grpc.ServiceError) => {
    assert.equal(err.code, 3);
    assert.match(err.details, /is assignment: its result is of kind assignment, not startSync/);
    return true;
  });
  const assigned = { machineId: c.machineId, processServerAddress: "127.0.0.1:1", nextSequence: 1, policy: "", direction: 0, directionAfterSequence: 0 };
  const right = { commandId: command.commandId, success: true, error: "", result: { kind: { $case: "assignment" as const, value: assigned } } };
  await unaryCall(client, client.reportCommandResult, right, c.credential);
  for (const s of streams) s.cancel();
});

test("a uint64 above 2^53 is INVALID_ARGUMENT naming the field", async () => {
  const ps = await register("ps-1");
  const update = { jobId: "none", stepName: "", stepState: 0, progressPercent: 0, message: "", bytesSent: 2 ** 60 };
  await assert.rejects(unaryCall(client, client.updateJob, update, ps.credential), (err: grpc.ServiceError) => {
    assert.equal(err.code, 3);
    assert.match(err.details, /bytes_sent/);
    return true;
  });
});
