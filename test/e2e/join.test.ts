import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import { srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { hasTool, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

/**
 * Hosts simulated on loopback addresses (Linux routes all of 127/8 to lo): the head node on
 * 127.0.0.1, an agent joining from "host 2" on 127.0.0.2 and a process server from "host 3" on
 * 127.0.0.3, each with a directory of its own, joined with the command `srlab token create`
 * prints. One lab serves every case.
 */
interface Component {
  name: string;
  role: string;
  address: string;
  host: string;
  hostName: string | null;
  metricsAddress: string | null;
}
interface MachineStatus {
  machineId: string;
  name: string;
  state: string;
  rpoSeconds: number;
  pendingBytes: number;
  capturedSequence: number;
  receivedSequence: number;
  processedSequence: number;
  processServer: string | null;
  disks: Array<{ path: string; sizeBytes: number; nbd: string }>;
}
interface Status {
  components: Component[];
  machines: MachineStatus[];
}
interface Token {
  token: string;
  tokenId: string;
  caHash: string;
  configServer: string;
  command: string;
  state: string;
}

const MiB = 1024 * 1024;
/** The head node's lab, and the other hosts' directories in its work directory. */
let head: string;
let work: string;
let host2: string;
let host3: string;
let disk2: string;

const status = () => srlabJson<Status>(["status", "--dir", head]);
const token = (role: string, ttl = "10m") => srlabJson<Token>(["token", "create", "--dir", head, "--role", role, "--ttl", ttl]);
const tokenState = async (id: string) => (await srlabJson<Token[]>(["token", "list", "--dir", head])).find((t) => t.tokenId === id)?.state;
/** The printed command line, run as pasted on the other host (plus that host's own flags). */
const runJoin = (command: string, extra: string[]) => {
  const [bin, ...args] = command.split(" ");
  assert.equal(bin, "srlab");
  return srlab([...args, ...extra]);
};

let agentToken: Token;

test.beforeAll(async ({ startLab }) => {
  ({ dir: head, work } = await startLab({ name: "join", up: ["--storage", "directory", "--disk-size", "32MiB", "--time-unit", "1s"] }));
  host2 = join(work, "host2");
  host3 = join(work, "host3");
  disk2 = join(work, "host2-disk.img");
  agentToken = await token("agent");
});

afterAll(async () => {
  try {
    await checkCaughtUpReplicas(head);
  } finally {
    // The head's lab is stopped by the lab fixture, after the hosts that joined it.
    for (const d of [host2, host3]) if (existsSync(join(d, "lab.json"))) await srlab(["down", "--dir", d]);
  }
});

describe("joining hosts to a head node", () => {
  test("token create prints the exact join command: configuration server, token and the CA's hash", () => {
    assert.match(agentToken.caHash, /^sha256:[0-9a-f]{64}$/);
    assert.equal(agentToken.command, `srlab join agent --config-server ${agentToken.configServer} --token ${agentToken.token} --ca-hash ${agentToken.caHash}`);
  });

  test("a wrong --ca-hash stops with one line: nothing written, the token unused, nothing registered", async () => {
    const wrong = agentToken.command.replace(agentToken.caHash, `sha256:${"0".repeat(64)}`);
    const r = await runJoin(wrong, ["--dir", host2, "--listen", "127.0.0.2", "--name", "host2", "--disk", `${disk2}:32MiB`, "--detach"]);
    assert.equal(r.code, 1);
    const errors = r.stderr.trim().split("\n").filter((l) => l.startsWith("srlab:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /does not present the CA sha256:0{64}: nothing was sent/);
    assert.equal(existsSync(join(host2, "config", "host2.yaml")), false);
    assert.equal(existsSync(disk2), false);
    assert.equal(await tokenState(agentToken.tokenId), "active");
    const s = await status();
    assert.equal(s.components.some((c) => c.name === "host2"), false);
    assert.equal(s.machines.some((m) => m.name === "host2"), false);
  });

  test("join --service where systemd does not run: one line, before the token is used or anything written", async ({ skip }) => {
    if (existsSync("/run/systemd/system")) return skip("systemd runs on this host: --service would install a real unit");
    const host6 = join(work, "host6");
    const r = await runJoin(agentToken.command, ["--dir", host6, "--listen", "127.0.0.6", "--name", "host6", "--disk", `${join(work, "host6.img")}:1MiB`, "--service"]);
    assert.equal(r.code, 1);
    const errors = r.stderr.trim().split("\n").filter((l) => l.startsWith("srlab:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /--service: systemd does not run on this host .*srlab join --detach.*the join token is unused/);
    assert.equal(existsSync(host6), false);
    assert.equal(await tokenState(agentToken.tokenId), "active");
  });

  test("an agent joined on 127.0.0.2 replicates fio writes through its NBD export byte-exact", async ({ skip }) => {
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const r = await runJoin(agentToken.command, ["--dir", host2, "--listen", "127.0.0.2", "--name", "host2", "--disk", `${disk2}:32MiB`, "--detach"]);
    assert.equal(r.code, 0, r.stderr);
    // Created sparse at its size; the key made on host 2 stayed there (owner-only).
    assert.equal(statSync(disk2).size, 32 * MiB);
    assert.ok(statSync(disk2).blocks * 512 < 32 * MiB, "the image is sparse");
    assert.equal(statSync(join(host2, "pki", "host2-key.pem")).mode & 0o077, 0);
    assert.equal(await tokenState(agentToken.tokenId), "used");

    const joined = (await status()).machines.find((m) => m.name === "host2");
    assert.ok(joined, "the joined machine is in status");
    assert.match(joined.disks[0]!.nbd, /^nbd:\/\/127\.0\.0\.2:\d+\/disk0$/);
    await srlabOk(["protect", "host2", "--wait", "--dir", head], 180_000);
    execFileSync("fio", ["--name=joined", "--ioengine=nbd", `--uri=${joined.disks[0]!.nbd}`, "--rw=randwrite", "--bs=4k", "--size=8m", "--iodepth=8", "--verify=crc32c", "--do_verify=1"], { stdio: "ignore" });
    const m = await waitCaughtUp(async () => (await status()).machines.find((x) => x.name === "host2")!);
    const out = join(work, "host2-replica.img");
    const exported = await srlabJson<{ sha256: string }>(["export", "host2", "--to", out, "--dir", head]);
    assert.equal(exported.sha256, await sha256File(disk2), "the replica equals host 2's image");
    assert.equal(m.rpoSeconds, 0);
    rmSync(out, { force: true });
  });

  test("status --dir on the joined host says what runs there, its configuration server, and where the lab's status is", async () => {
    const r = await srlab(["status", "--dir", host2]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /no admin credential/);
    assert.match(r.stdout, /is a joined host's directory, not a head node's lab/);
    assert.match(r.stdout, /agent host2: serving 127\.0\.0\.2:\d+ \(health: SERVING\)/);
    assert.ok(r.stdout.includes(`Configuration server: ${agentToken.configServer}.`), r.stdout);
    assert.match(r.stdout, /run srlab status there/);
    const doc = await srlabJson<{ joined: boolean; components: Array<{ name: string; role: string; health: string; configServer: string }> }>(["status", "--dir", host2]);
    assert.equal(doc.joined, true);
    assert.deepEqual(
      doc.components.map((c) => [c.name, c.role, c.health, c.configServer]),
      [["host2", "agent", "SERVING", agentToken.configServer]],
    );
  });

  test("a used token and an expired token are refused with the reason", async () => {
    const reused = await runJoin(agentToken.command, ["--dir", join(work, "host4"), "--listen", "127.0.0.4", "--name", "host4", "--disk", `${join(work, "host4.img")}:1MiB`, "--detach"]);
    assert.equal(reused.code, 1);
    assert.match(reused.stderr, /refused the join: join token \S+ was already used/);
    const short = await token("agent", "1s");
    await new Promise((r) => setTimeout(r, 1500));
    const expired = await runJoin(short.command, ["--dir", join(work, "host5"), "--listen", "127.0.0.5", "--name", "host5", "--disk", `${join(work, "host5.img")}:1MiB`, "--detach"]);
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /refused the join: join token \S+ expired at/);
    const names = (await status()).components.map((c) => c.name);
    assert.equal(names.includes("host4") || names.includes("host5"), false);
    assert.equal(existsSync(join(work, "host4", "config", "host4.yaml")), false);
  });

  test("a process server joins on 127.0.0.3, shows with its host and address, and serves /metrics to the head", async () => {
    const t = await token("process-server");
    const r = await runJoin(t.command, ["--dir", host3, "--listen", "127.0.0.3", "--name", "ps-host3", "--detach"]);
    assert.equal(r.code, 0, r.stderr);
    const ps = await waitUntil("the joined process server in status", async () => (await status()).components.find((c) => c.name === "ps-host3" && c.role === "process-server"));
    assert.match(ps.address, /^127\.0\.0\.3:\d+$/);
    assert.equal(ps.host, "127.0.0.3");
    assert.ok(ps.hostName, "it reported its host name");
    const table = (await srlabOk(["status", "--dir", head])).stdout;
    assert.match(table, /ps-host3\s+process-server\s+\S+\s+127\.0\.0\.3:\d+\s+normal/);
    // Prometheus on the head finds it and can scrape it.
    const groups = JSON.parse((await srlabOk(["status", "--dir", head, "--prometheus-sd"])).stdout) as Array<{ targets: string[]; labels: Record<string, string> }>;
    const target = groups.find((g) => g.labels.srlab_daemon === "ps-host3");
    assert.ok(target, JSON.stringify(groups));
    assert.match(target.targets[0]!, /^127\.0\.0\.3:\d+$/);
    const scraped = await fetch(`http://${target.targets[0]}/metrics`);
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /# TYPE /);
    // Usable by the lab: with host 2's machine on the head's process server, the next machine goes to it.
    await srlabOk(["protect", "machine-1", "--wait", "--dir", head], 180_000);
    const machines = (await status()).machines;
    const m1 = machines.find((m) => m.name === "machine-1")!;
    if (machines.find((m) => m.name === "host2")?.processServer === "process-server-1") assert.equal(m1.processServer, "ps-host3");
    else assert.ok(["ps-host3", "process-server-1"].includes(m1.processServer ?? ""), m1.processServer ?? "none");
    await waitCaughtUp(async () => (await status()).machines.find((x) => x.name === "machine-1")!);
  });
});
