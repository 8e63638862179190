import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import ssh2 from "ssh2";
import { PortAllocator } from "../../cli/lab/index.js";
import { afterAll, beforeAll, describe, test } from "vitest";
import { srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { REPO_ROOT } from "../support/dist.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { connectNbd, patternBytes, sha256File } from "../support/images.js";
import { waitCaughtUp } from "../support/replication.js";

// Push installation (issue 12) against a real OpenSSH server started here on 127.0.0.2, with its
// own config, host key, a throwaway user and a throwaway key.

interface JobDoc {
  jobId: string;
  type: string;
  state: string;
  error: string | null;
  steps: Array<{ name: string; state: string; message?: string }>;
}
interface MachineStatus {
  machineId: string;
  name: string;
  state: string;
  rpoSeconds: number;
  pendingBytes: number;
  receivedSequence: number;
  capturedSequence: number;
  processedSequence: number;
  disks: Array<{ path: string; sizeBytes: number; nbd: string }>;
}

// ssh2 is CommonJS: `utils` is not among the names Node exposes to ESM imports.
const { utils } = ssh2;
const SSHD = "/usr/sbin/sshd";
const HOST = "127.0.0.2";
const lab = mkdtempSync(join(tmpdir(), "srlab-push-"));
const work = mkdtempSync(join(tmpdir(), "srlab-push-work-"));
const user = `srlabpush${randomBytes(3).toString("hex")}`;
const home = `/home/${user}`;
let skipReason: string | undefined;
let sshd: ChildProcess | undefined;
let port = 0;
let keyFile = "";
let userCreated = false;

async function freePortOn(host: string): Promise<number> {
  const ports = new PortAllocator(host);
  try {
    return await ports.next();
  } finally {
    await ports.release();
  }
}

function accepts(host: string, p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host, port: p });
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

function setUpSshd(): Promise<void> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing (apt-get install openssh-server)`);
  if (process.getuid?.() !== 0) throw new Error("sshd with a throwaway user needs root (useradd, privilege separation)");
  execFileSync("useradd", ["--create-home", "--shell", "/bin/sh", user]);
  userCreated = true;
  // A new account is locked ("!"), and sshd refuses locked accounts even for keys: "*" has no
  // password but is not locked.
  execFileSync("usermod", ["-p", "*", user]);
  const uid = Number(execFileSync("id", ["-u", user]).toString());
  const gid = Number(execFileSync("id", ["-g", user]).toString());
  const keys = utils.generateKeyPairSync("ed25519", { comment: "srlab push-install test" });
  keyFile = join(work, "id_ed25519");
  writeFileSync(keyFile, keys.private, { mode: 0o600 });
  mkdirSync(join(home, ".ssh"), { mode: 0o700 });
  writeFileSync(join(home, ".ssh", "authorized_keys"), `${keys.public}\n`, { mode: 0o600 });
  chownSync(join(home, ".ssh"), uid, gid);
  chownSync(join(home, ".ssh", "authorized_keys"), uid, gid);
  const hostKey = join(work, "ssh_host_ed25519_key");
  writeFileSync(hostKey, utils.generateKeyPairSync("ed25519").private, { mode: 0o600 });
  chmodSync(work, 0o755);
  const config = join(work, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${HOST}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(work, "sshd.pid")}`,
      "AuthorizedKeysFile .ssh/authorized_keys",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "PermitRootLogin no",
      `AllowUsers ${user}`,
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  execFileSync(SSHD, ["-t", "-f", config]);
  sshd = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  sshd.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  return waitUntil("sshd to listen", async () => {
    if (sshd?.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    return accepts(HOST, port);
  }, 20_000).then(() => undefined);
}

beforeAll(async () => {
  try {
    port = await freePortOn(HOST);
    await setUpSshd();
  } catch (err) {
    skipReason = `cannot run a test sshd: ${(err as Error).message}`;
    return;
  }
  // --advertise: hosts that join must be told this name, not the loopback address the head's own
  // tools dial (localhost resolves to the head here, as a DNS name would on a real network).
  await srlabOk(["up", "--detach", "--dir", lab, "--machines", "1", "--disk-size", "32MiB", "--time-unit", "1s", "--advertise", "localhost"]);
}, 300_000);

afterAll(async () => {
  try {
    if (!skipReason) await checkCaughtUpReplicas(lab);
  } finally {
    // The pushed daemon runs as the throwaway user: stop it with its own lab directory, then the rest.
    for (const role of ["agent"]) {
      const stateDir = join(home, ".srlab", role);
      if (existsSync(stateDir)) await srlab(["down", "--dir", stateDir]);
    }
    await srlab(["down", "--dir", lab]);
    sshd?.kill("SIGTERM");
    if (userCreated) {
      try {
        // Processes left by the throwaway user are this test's own (its pushed daemon).
        const pids = execFileSync("pgrep", ["-u", user]).toString().split(/\s+/).filter(Boolean).map(Number);
        for (const pid of pids) process.kill(pid, "SIGKILL");
      } catch {
        // pgrep found none
      }
      try {
        execFileSync("userdel", ["--remove", user], { stdio: "ignore" });
      } catch {
        // userdel complains about the missing mail spool and still removes the user
      }
    }
    rmSync(lab, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

async function jobsOfType(type: string): Promise<JobDoc[]> {
  return (await srlabJson<JobDoc[]>(["jobs", "--dir", lab])).filter((j) => j.type === type);
}

describe("push install over SSH", () => {
  test("a failing prerequisite gives its named code and starts nothing", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const unwritable = `/opt/srlab-push-test-${randomBytes(3).toString("hex")}`;
    const tokensBefore = await srlabJson<unknown[]>(["token", "list", "--dir", lab]);
    const r = await srlab(["push-install", HOST, "--port", String(port), "--ssh-user", user, "--identity", keyFile, "--remote-dir", unwritable, "--name", "never", "--dir", lab]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /STATE_DIR_NOT_WRITABLE: \/opt\/srlab-push-test-\w+\/agent cannot be created or written by the SSH user/);
    const [job] = await jobsOfType("PushInstall");
    assert.ok(job, "the push install is a job");
    assert.equal(job.state, "failed");
    assert.deepEqual(
      job.steps.map((s) => [s.name, s.state]),
      [
        ["Connect", "succeeded"],
        ["Prerequisites check", "failed"],
        ["Copy package", "not-started"],
        ["Install package", "not-started"],
        ["Create join token", "not-started"],
        ["Join configuration server", "not-started"],
      ],
    );
    assert.match(job.steps[1]!.message ?? "", /STATE_DIR_NOT_WRITABLE/);
    // Nothing started: no token, no component, nothing on the target.
    assert.equal((await srlabJson<unknown[]>(["token", "list", "--dir", lab])).length, tokensBefore.length);
    const status = await srlabJson<{ components: Array<{ name: string }> }>(["status", "--dir", lab]);
    assert.ok(!status.components.some((c) => c.name === "never"));
    assert.ok(!existsSync(unwritable));
    assert.ok(!existsSync(join(home, ".srlab")));
  }, 300_000);

  test("protect --push-install installs, joins and protects; the replica matches", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const disk = join(home, "disk0.img");
    const r = await srlab(
      ["protect", "pushed-1", "--push-install", HOST, "--port", String(port), "--ssh-user", user, "--identity", keyFile, "--disk", `${disk}:32MiB`, "--wait", "--dir", lab, "--json"],
      1_800_000,
    );
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as JobDoc;
    assert.equal(job.state, "succeeded");
    const [push] = await jobsOfType("PushInstall");
    assert.equal(push!.state, "succeeded");
    assert.ok(push!.steps.every((s) => s.state === "succeeded"), JSON.stringify(push!.steps));
    // The package bundles the whole production tree, not only the direct dependencies (it once
    // did, in a fresh clone, and the join crashed on the target with a missing module).
    const [tarball] = readdirSync(join(lab, "push-install")).filter((f) => f.endsWith(".tgz"));
    const bundled = new Set(execFileSync("tar", ["tzf", join(lab, "push-install", tarball!)], { maxBuffer: 256 * 2 ** 20 }).toString().split("\n"));
    const production = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: REPO_ROOT, maxBuffer: 64 * 2 ** 20 })
      .toString()
      .split("\n")
      .filter((p) => p.startsWith(join(REPO_ROOT, "node_modules")))
      .map((p) => `package/${relative(REPO_ROOT, p)}/package.json`);
    assert.ok(production.length > 100, `npm ls lists the production tree (${production.length})`);
    assert.deepEqual(production.filter((p) => !bundled.has(p)), [], "every production package is in the tarball");
    // The target was handed the advertised address of the configuration server.
    const manifest = JSON.parse(readFileSync(join(lab, "lab.json"), "utf8")) as { configServerAddress: string };
    const csPort = manifest.configServerAddress.split(":").pop();
    const pushedConfig = readFileSync(join(home, ".srlab", "agent", "config", "pushed-1.yaml"), "utf8");
    assert.match(pushedConfig, new RegExp(`address: localhost:${csPort}\\b`));

    const machine = async () => (await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", lab])).machines.find((m) => m.name === "pushed-1")!;
    const m = await machine();
    assert.equal(m.state, "protected");
    const nbd = await connectNbd(m.disks[0]!.nbd);
    for (let i = 0; i < 16; i++) await nbd.write(i * 2 * 2 ** 20 + 777 * i, patternBytes(64 * 1024, 300 + i));
    await nbd.flush();
    await nbd.close();
    await waitCaughtUp(machine);
    const out = join(work, "pushed.img");
    const exported = await srlabJson<{ sha256: string }>(["export", "pushed-1", "--disk", "0", "--to", out, "--dir", lab]);
    assert.equal(exported.sha256, await sha256File(disk), "the replica of the pushed machine equals its image on the target");
  }, 1_800_000);
});
