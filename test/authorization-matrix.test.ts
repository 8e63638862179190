import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, test } from "vitest";
import { bearerMetadata, channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer } from "../config-server/index.js";
import { MasterTarget, masterTargetOptions } from "../master-target/index.js";
import { ProcessServer, processServerOptions } from "../process-server/index.js";
import { joinToken } from "./support/join-token.js";
import {
  AdminServiceClient,
  AdminServiceService,
  ComponentRole,
  ConfigurationServiceClient,
  ConfigurationServiceService,
  DiskServiceClient,
  DiskServiceService,
  GroupServiceClient,
  GroupServiceService,
  IdentityServiceClient,
  IdentityServiceService,
  MasterTargetServiceClient,
  MasterTargetServiceService,
  ProcessServiceClient,
  ProcessServiceService,
  PlanServiceClient,
  PlanServiceService,
  ProofServiceClient,
  ProofServiceService,
  type RegisterResponse,
  SiteLocation,
  TelemetryServiceClient,
  TelemetryServiceService,
  type WatchCommandsResponse,
  JobType,
} from "../proto/index.js";
import { testConfigServerOptions } from "./support/config-server-options.js";

/**
 * The authorization matrix of docs/authorization.md, checked call by call: every configuration
 * server RPC with every kind of credential gets the answer the table documents.
 */
const MATRIX = readFileSync(new URL("../docs/authorization.md", import.meta.url), "utf8");
const KINDS = ["admin", "configuration server", "process server", "master target", "agent (same machine)", "agent (other machine)"] as const;
type Kind = (typeof KINDS)[number];

/** Rows of the matrix: RPC name → the documented cell per caller kind. */
function matrixRows(): Map<string, Record<Kind, string>> {
  const rows = new Map<string, Record<Kind, string>>();
  for (const line of MATRIX.split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== KINDS.length + 1 || !/^\w+Service\./.test(cells[0]!)) continue;
    rows.set(cells[0]!, Object.fromEntries(KINDS.map((k, i) => [k, cells[i + 1]!])) as Record<Kind, string>);
  }
  return rows;
}

const dir = mkdtempSync(join(tmpdir(), "srlab-authz-"));
const options = testConfigServerOptions(dir);
let server: ConfigServer;
/** A process server and a master target in-process: their services check callers themselves. */
let processServer: ProcessServer;
let masterTarget: MasterTarget;
let client: ConfigurationServiceClient;
let admin: AdminServiceClient;
let identity: IdentityServiceClient;
/** One client per configuration server service, by service name. */
const clients = new Map<string, grpc.Client>();
const credentials = {} as Record<Kind, string>;
let agentA: RegisterResponse;
let jobOfA = "";
let commandOfA = "";
let commandOfPs = "";
const streams: grpc.ClientReadableStream<WatchCommandsResponse>[] = [];

/** Agents register with the passphrase, process servers and master targets with a join token of their role. */
const register = async (role: ComponentRole, name: string) =>
  unaryCall(client, client.register, {
    passphrase: role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT ? "correct horse battery" : "",
    joinToken:
      role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER
        ? await joinToken(server, "process-server")
        : role === ComponentRole.COMPONENT_ROLE_MASTER_TARGET
          ? await joinToken(server, "master-target")
          : "",
    role,
    name,
    address: "127.0.0.1:1",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    disks: [{ diskId: "d0", index: 0, sizeBytes: 1 << 20, imagePath: "/x", nbdUri: "", nbdUnixUri: "", addedAtSequence: 0, blobName: "" }],
    version: "test",
    certificateRequest: "",
    hostName: "",
    metricsAddress: "",
  });

beforeAll(async () => {
  server = new ConfigServer(options, silentLogger());
  await server.start();
  client = new ConfigurationServiceClient(server.grpcAddress, channelCredentials(undefined));
  admin = new AdminServiceClient(server.grpcAddress, channelCredentials(undefined));
  identity = new IdentityServiceClient(server.grpcAddress, channelCredentials(undefined));
  const channel = channelCredentials(undefined);
  clients.set("ConfigurationService", client).set("AdminService", admin).set("IdentityService", identity);
  clients.set("TelemetryService", new TelemetryServiceClient(server.grpcAddress, channel));
  clients.set("DiskService", new DiskServiceClient(server.grpcAddress, channel));
  clients.set("ProofService", new ProofServiceClient(server.grpcAddress, channel));
  clients.set("GroupService", new GroupServiceClient(server.grpcAddress, channel));
  clients.set("PlanService", new PlanServiceClient(server.grpcAddress, channel));
  processServer = new ProcessServer(
    processServerOptions.parse({
      name: "ps-under-test",
      dataDir: join(dir, "ps"),
      insecure: true,
      configServer: { address: server.grpcAddress, joinToken: await joinToken(server, "process-server") },
      heartbeatIntervalMs: 200,
    }),
    silentLogger(),
  );
  await processServer.start();
  clients.set("ProcessService", new ProcessServiceClient(processServer.grpcAddress, channel));
  masterTarget = new MasterTarget(
    masterTargetOptions.parse({
      dataDir: join(dir, "mt"),
      insecure: true,
      configServer: { address: server.grpcAddress, joinToken: await joinToken(server, "master-target") },
      heartbeatIntervalMs: 200,
    }),
    silentLogger(),
  );
  await masterTarget.start();
  clients.set("MasterTargetService", new MasterTargetServiceClient(masterTarget.grpcAddress, channel));
  credentials.admin = server.adminCredential;
  // The configuration server calls other daemons with a credential of its own (role config-server).
  credentials["configuration server"] = server.serviceCredential;
  const ps = await register(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, "ps-1");
  credentials["process server"] = ps.credential;
  credentials["master target"] = (await register(ComponentRole.COMPONENT_ROLE_MASTER_TARGET, "mt-1")).credential;
  agentA = await register(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, "vm-a");
  credentials["agent (same machine)"] = agentA.credential;
  credentials["agent (other machine)"] = (await register(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, "vm-b")).credential;
  // A job of vm-a and a command sent to vm-a's agent: the "same machine" requests.
  for (const c of [ps.credential, agentA.credential]) streams.push(client.watchCommands({}, bearerMetadata(c)));
  const [toPs, toA] = streams.map((s) => new Promise<WatchCommandsResponse>((resolve) => s.once("data", resolve)));
  for (const s of streams) s.on("error", () => {});
  // Enabling protection needs the agent's command stream attached.
  await new Promise((r) => setTimeout(r, 1_000));
  jobOfA = (await unaryCall(admin, admin.enableProtection, { machine: "vm-a", policyName: "" }, server.adminCredential)).job!.jobId;
  commandOfA = (await toA!).commandId;
  commandOfPs = (await toPs!).commandId;
});

afterAll(async () => {
  for (const s of streams) s.cancel();
  for (const c of clients.values()) c.close();
  await processServer?.stop();
  await masterTarget?.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A request for each RPC; "same machine" requests name vm-a, its job, and a command sent to the
 * caller. Others are the RPC's default message (every field present, so it serializes).
 */
function request(rpc: string, kind: Kind, empty: object): object {
  switch (rpc) {
    case "heartbeat":
      return { health: 1, issues: [], machines: [{ machineId: agentA.machineId, stats: undefined, health: 1, issues: [], resyncRequired: false, resyncReason: "", disks: [] }] };
    case "reportCommandResult":
      return { commandId: kind === "process server" ? commandOfPs : kind === "master target" ? "none" : commandOfA, success: false, error: "matrix test", result: undefined };
    case "updateJob":
      return { jobId: jobOfA, stepName: "", stepState: 0, progressPercent: 0, message: "", bytesSent: 0 };
    case "reportRecoveryPoint":
      return { recoveryPoint: undefined };
    case "createJoinToken":
      return { role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, ttlSeconds: 60, reusable: false, description: "matrix test" };
    case "rotateCredential":
      // A name nobody has: an allowed caller gets NOT_FOUND, so nothing is rotated mid-test.
      return { component: "nobody", timeoutSeconds: 1 };
    case "replicate":
      return { message: { $case: "open", value: { machineId: agentA.machineId, disks: [], resync: false } } };
    case "applyWrites":
      return { message: { $case: "open", value: { machineId: agentA.machineId, crashConsistentFrequencySeconds: 0, retentionSeconds: 0 } } };
    case "getBlockChecksums":
    case "drainMachine":
    case "getMachineReplicationStatus":
    case "prepareTarget":
    case "getTargetStatus":
    case "restorePoint":
      return { ...empty, machineId: agentA.machineId };
    // Messages with repeated or bytes fields need them set to be encoded at all.
    case "createClientJob":
      return { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: [] };
    case "updateClientJob":
      return { jobId: "none", stepName: "", stepState: 0, progressPercent: 0, message: "", finish: 0, error: "", result: undefined };
    case "attachJobReport":
      return { jobId: "none", name: "report.html", content: Buffer.alloc(0) };
    case "removeComponent":
    case "listCredentials":
      return { component: "nobody", all: false };
    default:
      return empty;
  }
}

/** The status code of one call (0 when it succeeded); a stream is judged by its first event. */
async function callWith(c: grpc.Client, rpc: string, streaming: boolean, kind: Kind, empty: object, bidi = false): Promise<number> {
  const credential = credentials[kind];
  const method = (c as unknown as Record<string, (...args: unknown[]) => unknown>)[rpc]!;
  if (bidi) {
    // A bidirectional stream is judged by the answer to its first message (open).
    const stream = method.call(c, bearerMetadata(credential)) as grpc.ClientDuplexStream<unknown, unknown>;
    stream.write(request(rpc, kind, empty));
    return await new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        stream.cancel();
        resolve(0);
      }, 2_000);
      stream.once("data", () => {
        clearTimeout(timer);
        stream.cancel();
        resolve(0);
      });
      stream.on("error", (err: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve(err.code === 1 ? 0 : err.code);
      });
    });
  }
  if (streaming) {
    const stream = method.call(c, request(rpc, kind, empty), bearerMetadata(credential)) as grpc.ClientReadableStream<unknown>;
    return await new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        stream.cancel();
        resolve(0);
      }, 500);
      stream.on("error", (err: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve(err.code === 1 ? 0 : err.code);
      });
    });
  }
  return unaryCall(c, method as never, request(rpc, kind, empty), credential).then(
    () => 0,
    (err: grpc.ServiceError) => err.code,
  );
}

const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1);

/** Every service the configuration server serves (config-server.ts): a new one must join the table. */
const SERVICES = {
  ConfigurationService: ConfigurationServiceService,
  AdminService: AdminServiceService,
  IdentityService: IdentityServiceService,
  TelemetryService: TelemetryServiceService,
  DiskService: DiskServiceService,
  ProofService: ProofServiceService,
  GroupService: GroupServiceService,
  PlanService: PlanServiceService,
};
/** Services of the other daemons (process-server/caller-auth.ts, master-target/caller.ts). */
const DAEMON_SERVICES = {
  ProcessService: ProcessServiceService,
  MasterTargetService: MasterTargetServiceService,
};

describe("every configuration server RPC with every kind of credential", () => {
  const rows = matrixRows();
  type ServiceName = keyof typeof SERVICES | keyof typeof DAEMON_SERVICES;
  const cases: Array<{ rpc: string; service: ServiceName; streaming: boolean; bidi: boolean; empty: object }> = [];
  type Definition = Record<string, { path: string; requestStream: boolean; responseStream: boolean; requestDeserialize: (b: Buffer) => object }>;
  for (const [service, definition] of Object.entries({ ...SERVICES, ...DAEMON_SERVICES }) as Array<[ServiceName, Definition]>) {
    for (const method of Object.values(definition)) {
      const rpc = method.path.split("/")[2]!;
      // Register takes a proof instead of a credential: credentials.test.ts covers its column.
      if (rpc === "Register") continue;
      cases.push({
        rpc,
        service,
        streaming: method.responseStream,
        bidi: method.requestStream && method.responseStream,
        empty: method.requestDeserialize(Buffer.alloc(0)),
      });
    }
  }

  test("the configuration server serves exactly the services of this test", () => {
    const source = readFileSync(new URL("../config-server/config-server.ts", import.meta.url), "utf8");
    const names = [...source.matchAll(/name: "srlab\.v1\.(\w+)"/g)].map((m) => m[1]!).sort();
    assert.deepEqual(names, Object.keys(SERVICES).sort());
  });

  test("the matrix documents every RPC", () => {
    for (const c of cases) assert.ok(rows.has(`${c.service}.${c.rpc}`) || rows.has(`${c.service}.* (every RPC)`), `${c.service}.${c.rpc} is in docs/authorization.md`);
  });

  for (const c of cases) {
    test(`${c.service}.${c.rpc}`, async () => {
      const row = rows.get(`${c.service}.${c.rpc}`) ?? rows.get(`${c.service}.* (every RPC)`)!;
      const target = clients.get(c.service)!;
      for (const kind of KINDS) {
        const documented = row[kind];
        if (documented === "—" || documented === "") continue;
        const code = await callWith(target, lowerFirst(c.rpc), c.streaming, kind, c.empty, c.bidi);
        if (documented.startsWith("✗")) {
          assert.equal(code, 7, `${c.service}.${c.rpc} as ${kind}: documented PERMISSION_DENIED, got code ${code}`);
        } else {
          // 13 would be a request the test failed to serialize: the call never reached the rule.
          assert.ok(code !== 7 && code !== 16 && code !== 13, `${c.service}.${c.rpc} as ${kind}: documented allowed, got code ${code}`);
        }
      }
    });
  }
});
