import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, test } from "vitest";
import { bearerMetadata, channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ConfigServer, configServerOptions } from "../config-server/index.js";
import { joinToken } from "./support/join-token.js";
import {
  AdminServiceClient,
  AdminServiceService,
  ComponentRole,
  ConfigurationServiceClient,
  IdentityServiceClient,
  IdentityServiceService,
  type RegisterResponse,
  SiteLocation,
  type WatchCommandsResponse,
} from "../proto/index.js";

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
let admin: AdminServiceClient;
let identity: IdentityServiceClient;
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
  client.close();
  admin.close();
  identity.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A request for each RPC; "same machine" requests name vm-a, its job, and a command sent to the caller. */
function request(rpc: string, kind: Kind): object {
  switch (rpc) {
    case "heartbeat":
      return { health: 1, issues: [], machines: [{ machineId: agentA.machineId, stats: undefined, health: 1, issues: [], resyncRequired: false, resyncReason: "", disks: [] }] };
    case "reportCommandResult":
      return { commandId: kind === "process server" ? commandOfPs : kind === "master target" ? "none" : commandOfA, success: false, error: "matrix test", resultJson: "" };
    case "updateJob":
      return { jobId: jobOfA, stepName: "", stepState: 0, progressPercent: 0, message: "", bytesSent: 0 };
    case "reportRecoveryPoint":
      return { recoveryPoint: undefined };
    case "createJoinToken":
      return { role: "agent", ttlSeconds: 60, reusable: false, description: "matrix test" };
    case "rotateCredential":
      // A name nobody has: an allowed caller gets NOT_FOUND, so nothing is rotated mid-test.
      return { component: "nobody", timeoutSeconds: 1 };
    case "removeComponent":
    case "listCredentials":
      return { component: "nobody", all: false };
    default:
      return {};
  }
}

/** The status code of one call (0 when it succeeded); a stream is judged by its first event. */
async function callWith(c: grpc.Client, rpc: string, streaming: boolean, kind: Kind): Promise<number> {
  const credential = credentials[kind];
  const method = (c as unknown as Record<string, (...args: unknown[]) => unknown>)[rpc]!;
  if (streaming) {
    const stream = method.call(c, request(rpc, kind), bearerMetadata(credential)) as grpc.ClientReadableStream<unknown>;
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
  return unaryCall(c, method as never, request(rpc, kind), credential).then(
    () => 0,
    (err: grpc.ServiceError) => err.code,
  );
}

const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1);

describe("every configuration server RPC with every kind of credential", () => {
  const rows = matrixRows();
  const cases: Array<{ rpc: string; service: "ConfigurationService" | "AdminService" | "IdentityService"; streaming: boolean }> = [];
  for (const rpc of ["Heartbeat", "WatchCommands", "ReportCommandResult", "UpdateJob", "ReportRecoveryPoint", "RenewCredential"]) {
    cases.push({ rpc, service: "ConfigurationService", streaming: rpc === "WatchCommands" });
  }
  for (const method of Object.values(AdminServiceService)) {
    cases.push({ rpc: method.path.split("/")[2]!, service: "AdminService", streaming: method.responseStream });
  }
  for (const method of Object.values(IdentityServiceService)) {
    cases.push({ rpc: method.path.split("/")[2]!, service: "IdentityService", streaming: method.responseStream });
  }

  test("the matrix documents every RPC", () => {
    for (const c of cases) assert.ok(rows.has(`${c.service}.${c.rpc}`) || rows.has(`${c.service}.* (every RPC)`), `${c.service}.${c.rpc} is in docs/authorization.md`);
  });

  for (const c of cases) {
    test(`${c.service}.${c.rpc}`, async () => {
      const row = rows.get(`${c.service}.${c.rpc}`) ?? rows.get(`${c.service}.* (every RPC)`)!;
      const target = c.service === "AdminService" ? admin : c.service === "IdentityService" ? identity : client;
      for (const kind of KINDS) {
        const documented = row[kind];
        if (documented === "—" || documented === "") continue;
        const code = await callWith(target, lowerFirst(c.rpc), c.streaming, kind);
        if (documented.startsWith("✗")) {
          assert.equal(code, 7, `${c.service}.${c.rpc} as ${kind}: documented PERMISSION_DENIED, got code ${code}`);
        } else {
          assert.ok(code !== 7 && code !== 16, `${c.service}.${c.rpc} as ${kind}: documented allowed, got code ${code}`);
        }
      }
    });
  }
});
