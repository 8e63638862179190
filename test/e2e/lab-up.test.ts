import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { ComponentRole, SiteLocation } from "../../proto/index.js";
import { DAEMON_ALLOCATOR_ENV, DAEMON_NODE_FLAGS } from "../../common/bytes/index.js";
import { CsLink } from "../../common/cs-link/index.js";
import { silentLogger } from "../../common/logger.js";
import { checkHealth, isAlive, LabLayout, readKeeperState } from "../../cli/lab/index.js";
import { CLI_MAIN, srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { killLeftovers, test } from "../support/lab.js";
import { listServices } from "../support/reflection-client.js";

interface Daemon {
  name: string;
  pid: number;
  state: string;
  restarts: number;
  lastExit: string | null;
}

interface Status {
  caFile: string;
  daemons: Daemon[];
  components: Array<{ name: string; role: string; address: string; health: string; lastHeartbeat?: string | null }>;
  machines: Array<{ name: string; state: string; disks: Array<{ path: string; sizeBytes: number; nbd: string; nbdUnix: string }> }>;
}

let dir: string;

test.beforeAll(async ({ startLab }) => {
  ({ dir } = await startLab({ name: "up", up: ["--machines", "2", "--disk-size", "16MiB", "--time-unit", "1s"] }));
});

afterAll(() => checkCaughtUpReplicas(dir));

test("every daemon answers the standard health check over TLS with the lab CA", async () => {
  const status = await srlabJson<Status>(["status", "--dir", dir]);
  const daemons = status.components.filter((c) => c.address);
  assert.ok(daemons.length >= 6, `expected CS, 2 PS, MT and 2 agents, got ${daemons.map((c) => c.name)}`);
  for (const c of daemons) {
    assert.equal(await checkHealth(c.address, status.caFile), "SERVING", `${c.name} at ${c.address}`);
  }
  // Without the lab CA the TLS handshake must fail: the daemons do not speak plaintext.
  await assert.rejects(checkHealth(daemons[0]!.address, undefined));
});

test("reflection lists the srlab.v1 services next to health", async () => {
  const status = await srlabJson<Status>(["status", "--dir", dir]);
  const byRole = (role: string) => status.components.find((c) => c.role === role)!;
  const expectations: Array<[string, string]> = [
    ["configuration-server", "srlab.v1.ConfigurationService"],
    ["configuration-server", "srlab.v1.AdminService"],
    ["process-server", "srlab.v1.ProcessService"],
    ["master-target", "srlab.v1.MasterTargetService"],
  ];
  for (const [role, service] of expectations) {
    const services = await listServices(byRole(role).address, status.caFile);
    assert.ok(services.includes(service), `${role} lists ${services.join(", ")}`);
    assert.ok(services.includes("grpc.health.v1.Health"), `${role} lists health`);
  }
});

test("status --json describes every component and machine", async () => {
  const status = await srlabJson<Status>(["status", "--dir", dir]);
  assert.ok(readFileSync(status.caFile, "utf8").includes("BEGIN CERTIFICATE"));
  const roles = status.components.map((c) => c.role).sort();
  assert.deepEqual(roles, [
    "configuration-server",
    "master-target",
    "mobility-agent",
    "mobility-agent",
    "process-server",
    "process-server",
  ]);
  for (const c of status.components) {
    assert.equal(c.health, "normal", `${c.name} health`);
    if (c.role !== "configuration-server") assert.ok(c.lastHeartbeat, `${c.name} heartbeat`);
  }
  assert.deepEqual(status.machines.map((m) => m.name).sort(), ["machine-1", "machine-2"]);
  for (const m of status.machines) {
    assert.equal(m.state, "unprotected");
    assert.equal(m.disks.length, 1);
    const disk = m.disks[0]!;
    assert.equal(disk.sizeBytes, 16 * 1024 * 1024);
    assert.match(disk.nbd, /^nbd:\/\/127\.0\.0\.1:\d+\/.+/);
    assert.match(disk.nbdUnix, /^nbd\+unix:\/\/\/.+\?socket=.+/);
    // The image is a sparse file of the configured size.
    const stat = execFileSync("stat", ["-c", "%s %b", disk.path], { encoding: "utf8" }).trim().split(" ").map(Number);
    assert.equal(stat[0], 16 * 1024 * 1024);
    assert.ok(stat[1]! * 512 < 16 * 1024 * 1024, "image is sparse");
  }
});

test("the passphrase registers agents only: a host holding it cannot become a process server (nor admin)", async () => {
  const layout = new LabLayout(dir);
  const manifest = layout.read();
  const link = (role: ComponentRole, passphrase: string) =>
    new CsLink({
      address: manifest.configServerAddress,
      passphrase,
      role,
      name: "intruder",
      location: SiteLocation.SITE_LOCATION_ON_PREMISES,
      tls: { caFile: manifest.caFile },
      logger: silentLogger(),
    });
  const wrong = link(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, "not-the-passphrase");
  await assert.rejects(wrong.register(5_000), (err: { code: number; details: string }) => {
    assert.equal(err.code, 16, "UNAUTHENTICATED");
    assert.match(err.details, /wrong deployment passphrase/);
    return true;
  });
  await wrong.stop();
  // The right passphrase, as every agent's config used to hold it, registers no process server.
  const passphrase = readFileSync(join(dir, "passphrase"), "utf8").trim();
  const asPs = link(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, passphrase);
  await assert.rejects(asPs.register(5_000), (err: { code: number; details: string }) => {
    assert.equal(err.code, 7, "PERMISSION_DENIED");
    assert.match(err.details, /join token/);
    return true;
  });
  await asPs.stop();
  const status = await srlabJson<Status>(["status", "--dir", dir]);
  assert.ok(!status.components.some((c) => c.name === "intruder"));
  // No daemon's config holds the passphrase: each holds its own credential only.
  for (const c of manifest.components.filter((x) => x.configFile && x.role !== "config-server")) {
    const text = readFileSync(c.configFile!, "utf8");
    assert.ok(!text.includes(passphrase), `${c.name}'s config holds the passphrase`);
    assert.match(text, /credential: srl1\./, `${c.name}'s config holds its credential`);
    assert.doesNotMatch(text, /joinToken/, `${c.name}'s config still holds its join token`);
  }
});

test("token create prints a token and the CA hash; rotation keeps a process server working, restarts included", async () => {
  const created = await srlabJson<{ token: string; caHash: string; role: string; state: string }>(["token", "create", "--role", "process-server", "--ttl", "1h", "--dir", dir, "--json"]);
  assert.match(created.token, /^[\w-]{8}\.[\w-]{27}$/);
  assert.match(created.caHash, /^sha256:[0-9a-f]{64}$/);
  assert.equal(created.state, "active");
  const tokens = await srlabJson<Array<{ tokenId: string; state: string }>>(["token", "list", "--dir", dir, "--json"]);
  assert.equal(tokens.find((t) => t.tokenId === created.token.split(".")[0])?.state, "active");
  await srlabOk(["token", "revoke", created.token.split(".")[0]!, "--dir", dir]);

  const layout = new LabLayout(dir);
  const ps = layout.read().components.find((c) => c.name === "process-server-1")!;
  const before = readFileSync(ps.configFile!, "utf8");
  const rotated = await srlabJson<{ credential: { credentialId: string }; revokedCredentialIds: string[] }>(["credentials", "rotate", "process-server-1", "--dir", dir, "--json"]);
  assert.equal(rotated.revokedCredentialIds.length, 1);
  const after = readFileSync(ps.configFile!, "utf8");
  assert.notEqual(after, before, "the rotated credential is in the config file");
  const listed = await srlabJson<Array<{ credentialId: string; revokedAt: string | null }>>(["credentials", "list", "--component", "process-server-1", "--all", "--dir", dir, "--json"]);
  assert.equal(listed.find((c) => c.credentialId === rotated.revokedCredentialIds[0])?.revokedAt !== null, true);
  assert.equal(listed.find((c) => c.credentialId === rotated.credential.credentialId)?.revokedAt, null);
});

test("srlab remove revokes a machine's credential, unregisters it and stops its agent", async () => {
  await srlabOk(["up", "--detach", "--dir", dir, "--machines", "3"]);
  const layout = new LabLayout(dir);
  const agent = layout.read().components.find((c) => c.name === "machine-3")!;
  const credential = (readFileSync(agent.configFile!, "utf8").match(/credential: (\S+)/) ?? [])[1]!;
  assert.ok(credential, "machine-3 registered and kept its credential");
  const removed = await srlabJson<{ removed: string[]; revokedCredentialIds: string[]; stopped: string[] }>(["remove", "machine-3", "--dir", dir, "--json"]);
  assert.deepEqual(removed.removed, ["machine-3"]);
  assert.deepEqual(removed.stopped, ["machine-3"]);
  assert.equal(removed.revokedCredentialIds.length, 1);
  assert.equal(isAlive(agent.pid), false, "its agent is stopped");
  assert.ok(!layout.read().components.some((c) => c.name === "machine-3"));
  const status = await srlabJson<Status>(["status", "--dir", dir]);
  assert.ok(!status.machines.some((m) => m.name === "machine-3"));
  assert.ok(!status.components.some((c) => c.name === "machine-3"));
  const again = await srlab(["remove", "machine-3", "--dir", dir]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /no component or machine "machine-3"/);
});

test("every daemon, Azurite included, starts with the allocator settings and node flags for streaming buffers", async () => {
  const { daemons } = await srlabJson<Status>(["status", "--dir", dir]);
  assert.ok(daemons.length >= 5);
  for (const d of daemons) {
    assert.ok(d.pid > 0, `${d.name} has a pid`);
    const environ = readFileSync(`/proc/${d.pid}/environ`, "utf8").split("\0");
    for (const [name, value] of Object.entries(DAEMON_ALLOCATOR_ENV)) assert.ok(environ.includes(`${name}=${value}`), `${d.name} runs with ${name}=${value}`);
    const argv = readFileSync(`/proc/${d.pid}/cmdline`, "utf8").split("\0");
    for (const flag of DAEMON_NODE_FLAGS) assert.ok(argv.includes(flag), `${d.name} runs with ${flag}: ${argv.join(" ")}`);
  }
});

test("a daemon that dies is restarted by its supervisor; status shows restarts and the last exit", async () => {
  const daemon = async (name: string) => (await srlabJson<Status>(["status", "--dir", dir])).daemons.find((d) => d.name === name)!;
  for (const name of ["process-server-1", "azurite"]) {
    const before = await daemon(name);
    assert.equal(before.state, "running");
    assert.equal(before.restarts, 0);
    process.kill(before.pid, "SIGKILL");
    const after = await waitUntil(`${name} restarted`, async () => {
      const d = await daemon(name);
      return d.state === "running" && d.pid !== before.pid && d.pid > 0 ? d : undefined;
    });
    assert.equal(after.restarts, 1);
    assert.equal(after.lastExit, "killed by SIGKILL");
  }
  // The restarted process server serves and reports again.
  const status = await waitUntil("every component healthy again", async () => {
    const s = await srlabJson<Status>(["status", "--dir", dir]);
    return s.components.every((c) => c.health === "normal") ? s : undefined;
  });
  const ps = status.components.find((c) => c.name === "process-server-1")!;
  // The restarted server reports SERVING once its start-up has finished, not the instant it listens.
  await waitUntil("the restarted process server serving", async () => ((await checkHealth(ps.address, status.caFile)) === "SERVING" ? true : undefined));
});

test("a second up on the same directory resumes the same lab", async () => {
  const before = new LabLayout(dir).read();
  await srlabOk(["up", "--detach", "--dir", dir]);
  const again = new LabLayout(dir).read();
  assert.equal(again.configServerAddress, before.configServerAddress);
  assert.deepEqual(
    again.components.map((c) => c.pid),
    before.components.map((c) => c.pid),
    "running components are left alone",
  );
});

test("down stops every process", async () => {
  const layout = new LabLayout(dir);
  const manifest = layout.read();
  const pids = manifest.components.map((c) => c.pid);
  const daemonPids = manifest.components.map((c) => readKeeperState(layout.supervisorFile(c.name))!.pid);
  assert.ok([...pids, ...daemonPids].every((p) => p > 0 && isAlive(p)));
  await srlabOk(["down", "--dir", dir]);
  for (const pid of [...pids, ...daemonPids]) assert.equal(isAlive(pid), false, `pid ${pid} still alive`);
  const r = await srlab(["status", "--dir", dir]);
  assert.notEqual(r.code, 0, "status fails once the lab is down");
  assert.equal(r.stderr.trim().split("\n").length, 1, "one-line reason");
});

test("an up that fails part-way stops everything it started", async () => {
  const layout = new LabLayout(dir);
  const agentConfig = layout.read().components.find((c) => c.name === "machine-2")!.configFile!;
  const good = readFileSync(agentConfig, "utf8");
  writeFileSync(agentConfig, `${good}\ndisks: not-a-list\n`);
  try {
    const r = await srlab(["up", "--detach", "--dir", dir]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /machine-2 failed to start/);
    const manifest = layout.read();
    for (const c of manifest.components) {
      assert.equal(c.pid, 0, `${c.name} is recorded as stopped`);
      const k = readKeeperState(layout.supervisorFile(c.name));
      if (k?.pid) assert.equal(isAlive(k.pid), false, `${c.name} (pid ${k.pid}) still runs`);
      if (k?.keeperPid) assert.equal(isAlive(k.keeperPid), false, `${c.name}'s supervisor still runs`);
    }
  } finally {
    writeFileSync(agentConfig, good);
  }
});

/** `srlab up` in the foreground on `dir`, once it says it runs until Ctrl-C. */
async function foregroundUp(dir: string) {
  const child = spawn(process.execPath, [CLI_MAIN, "up", "--dir", dir, "--disk-size", "16MiB"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (stderr.includes("press Ctrl-C")) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    exited.then(() => reject(new Error(`up exited before Ctrl-C: ${stderr}`)));
  });
  return { child, exited, stderr: () => stderr };
}

test("up in the foreground runs until Ctrl-C, then stops the whole lab", async () => {
  const fg = mkdtempSync(join(tmpdir(), "srlab-fg-"));
  try {
    const { child, exited } = await foregroundUp(fg);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(child.exitCode, null, "still running in the foreground");
    // The foreground lab is supervised too.
    const layout = new LabLayout(fg);
    const mtState = layout.supervisorFile("master-target");
    const killed = readKeeperState(mtState)!.pid;
    process.kill(killed, "SIGKILL");
    await waitUntil("master target restarted", async () => {
      const k = readKeeperState(mtState);
      return k && k.state === "running" && k.pid !== killed && k.restarts === 1;
    });
    const pids = layout.read().components.map((c) => c.pid);
    child.kill("SIGINT");
    assert.equal(await exited, 0);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} still alive after Ctrl-C`);
  } finally {
    killLeftovers(fg);
    rmSync(fg, { recursive: true, force: true });
  }
});

test("a foreground up ends by itself when srlab down stops its lab from another terminal", async () => {
  const fg = mkdtempSync(join(tmpdir(), "srlab-fg-down-"));
  try {
    const { exited, stderr } = await foregroundUp(fg);
    await srlabOk(["down", "--dir", fg]);
    assert.equal(await exited, 0);
    assert.match(stderr(), /the lab was stopped from elsewhere/);
  } finally {
    killLeftovers(fg);
    rmSync(fg, { recursive: true, force: true });
  }
});
