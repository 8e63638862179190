import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, describe } from "vitest";
import { LabLayout } from "../../cli/lab/index.js";
import { srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { connectNbd, hasTool, patternBytes, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

// Operating protected machines (issue 12): switch-process-server mid-workload and
// disable-protection. The head node runs on 127.0.0.1 with one process server; a second process
// server joins from "host 3" on 127.0.0.3 with a directory of its own, and takes the machine.

interface MachineStatus {
  machineId: string;
  name: string;
  state: string;
  processServer: string | null;
  rpoSeconds: number;
  pendingBytes: number;
  receivedSequence: number;
  capturedSequence: number;
  processedSequence: number;
  disks: Array<{ path: string; sizeBytes: number; nbd: string }>;
}
interface JobDoc {
  jobId: string;
  type: string;
  state: string;
  bytesSent: number;
  result: Record<string, unknown> | null;
  steps: Array<{ name: string; state: string; message?: string }>;
}

const MiB = 1024 * 1024;
let dir: string;
let work: string;
/** Host 3's directory, in the work directory; its process server joins the lab. */
let host3: string;
const JOINED_PS = "ps-host3";

async function machine(name = "machine-1"): Promise<MachineStatus> {
  const s = await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === name)!;
}

async function assertReplicaEqualsSource(name = "machine-1"): Promise<void> {
  const m = await waitCaughtUp(() => machine(name));
  const out = join(work, `${name}.img`);
  const exported = await srlabJson<{ sha256: string }>(["export", name, "--disk", "0", "--to", out, "--dir", dir]);
  assert.equal(exported.sha256, await sha256File(m.disks[0]!.path), `replica of ${name} equals its source image`);
  rmSync(out, { force: true });
}

/** Every blob (page blobs and their snapshots included) in every container of the lab's Azurite. */
async function allBlobNames(): Promise<string[]> {
  const storage = new LabLayout(dir).read().storage;
  const service = BlobServiceClient.fromConnectionString(storage.connectionString!);
  const names: string[] = [];
  for await (const c of service.listContainers()) {
    for await (const b of service.getContainerClient(c.name).listBlobsFlat({ includeSnapshots: true })) names.push(`${c.name}/${b.name}`);
  }
  return names;
}

function metricsUrlOf(component: string): string {
  // The head's daemons are in its lab.json; the joined process server in host 3's.
  const c = [dir, host3].flatMap((d) => (new LabLayout(d).exists() ? new LabLayout(d).read().components : [])).find((x) => x.name === component)!;
  return (JSON.parse(readFileSync(c.readyFile, "utf8")) as { metricsUrl: string }).metricsUrl;
}

async function metricsText(component: string): Promise<string> {
  const res = await fetch(metricsUrlOf(component));
  return res.text();
}

/** fio in the background; stop() ends it (SIGINT: fio finishes its in-flight writes and exits). */
function fio(args: string[]): { done: Promise<void>; stop(): Promise<void> } {
  let child: ReturnType<typeof execFile> | undefined;
  let stopping = false;
  // fio exits non-zero when interrupted; only a failure before stop() is one.
  const done = new Promise<void>((resolve, reject) => {
    child = execFile("fio", args, { timeout: 900_000 }, (err, _o, stderr) => (err && !stopping ? reject(new Error(`fio: ${stderr}`)) : resolve()));
  });
  return {
    done,
    stop: async () => {
      stopping = true;
      child?.kill("SIGINT");
      await done;
    },
  };
}

async function jobsOf(name = "machine-1"): Promise<JobDoc[]> {
  return srlabJson<JobDoc[]>(["jobs", "--machine", name, "--dir", dir]);
}

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "operate", up: ["--machines", "1", "--process-servers", "1", "--disk-size", "32MiB", "--time-unit", "1s"] }));
  host3 = join(work, "host3");
  const m = await machine();
  const nbd = await connectNbd(m.disks[0]!.nbd);
  for (let i = 0; i < 6; i++) await nbd.write(i * 5 * MiB + 512 * i, patternBytes(300 * 1024, 40 + i));
  await nbd.close();
  // Protected on the head's process server before the second one exists.
  await srlabOk(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
  // "Host 3" joins with the command token create prints, as pasted there.
  const t = await srlabJson<{ command: string }>(["token", "create", "--role", "process-server", "--dir", dir]);
  const [bin, ...args] = t.command.split(" ");
  assert.equal(bin, "srlab");
  await srlabOk([...args, "--dir", host3, "--listen", "127.0.0.3:0", "--name", JOINED_PS, "--detach"]);
}, 400_000);

afterAll(async () => {
  try {
    await checkCaughtUpReplicas(dir);
  } finally {
    // The lab itself is stopped by the lab fixture, after the host that joined it.
    if (new LabLayout(host3).exists()) await srlab(["down", "--dir", host3]);
  }
});

describe("operating protected machines", () => {
  test("switch-process-server to a process server joined on 127.0.0.3, mid-fio-workload: no resync, nothing acknowledged lost, replica equals source", async ({ skip }) => {
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const before = await waitCaughtUp(() => machine());
    const from = before.processServer!;
    assert.equal(from, "process-server-1", "the machine starts on the head's process server");
    const components = await srlabJson<{ components: Array<{ name: string; role: string; address: string }> }>(["status", "--dir", dir]);
    const joined = components.components.find((c) => c.name === JOINED_PS);
    assert.equal(joined?.role, "process-server");
    assert.match(joined.address, /^127\.0\.0\.3:\d+$/);
    const to = JOINED_PS;
    const jobsBefore = await jobsOf();
    const copies = jobsBefore.filter((j) => j.type === "EnableProtection" || j.type === "Resync").length;

    // fio writes through the NBD export for the whole switch.
    const workload = fio([
      "--name=switch",
      "--ioengine=nbd",
      `--uri=${before.disks[0]!.nbd}`,
      "--rw=randwrite",
      "--bs=4k",
      "--size=24m",
      "--time_based",
      "--runtime=900",
      "--rate=512k",
      "--iodepth=4",
      "--randseed=17",
    ]);
    let job: JobDoc;
    let continued: number;
    try {
      await waitUntil("fio's writes to reach the process server", async () => (await machine()).receivedSequence > before.receivedSequence + 50, 120_000);
      job = await srlabJson<JobDoc>(["switch-process-server", "machine-1", "--to", to, "--dir", dir], 300_000);
      continued = Number(job.result?.continuedAfterSequence);
      // fio keeps writing after the switch: those writes go through the new process server.
      await waitUntil("writes through the new process server", async () => (await machine()).receivedSequence > continued + 50, 120_000);
    } finally {
      await workload.stop();
    }

    assert.equal(job.state, "succeeded");
    assert.deepEqual(
      job.steps.map((s) => [s.name, s.state]),
      [
        ["Drain source process server", "succeeded"],
        ["Hand over to target process server", "succeeded"],
        ["Redirect agent", "succeeded"],
        ["Resume replication", "succeeded"],
      ],
    );
    assert.ok(continued > before.receivedSequence, `the new process server continued after sequence ${continued}, past the ${before.receivedSequence} held before the workload`);

    const after = await waitCaughtUp(() => machine());
    assert.equal(after.processServer, to);
    assert.equal(after.state, "protected");
    assert.ok(after.receivedSequence > continued, "writes after the switch went through the new process server");
    await assertReplicaEqualsSource();

    // No initial replication and no resync happened: no new copy job, and the agent never
    // reopened with a resync.
    const jobsAfter = await jobsOf();
    assert.equal(jobsAfter.filter((j) => j.type === "EnableProtection" || j.type === "Resync").length, copies, "the switch started no copy job");
    // The old process server no longer names the machine in its metrics.
    assert.doesNotMatch(await metricsText(from), new RegExp(`machine_id="${after.machineId}"`));
    assert.match(await metricsText(to), new RegExp(`machine_id="${after.machineId}"`));
  }, 600_000);

  test("switch-process-server refuses an unknown process server and starts nothing", async () => {
    const r = await srlab(["switch-process-server", "machine-1", "--to", "no-such-ps", "--dir", dir]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no process server named "no-such-ps"/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.ok(!(await jobsOf()).some((j) => j.type === "SwitchProcessServer" && j.state !== "succeeded"));
  });

  test("disable-protection --keep-replica keeps storage; protect again continues the log and is byte-exact", async () => {
    const m = await waitCaughtUp(() => machine());
    const ps = m.processServer!;
    const blobsBefore = (await allBlobNames()).filter((n) => n.includes(m.machineId));
    const job = await srlabJson<JobDoc>(["disable-protection", "machine-1", "--keep-replica", "--dir", dir], 300_000);
    assert.equal(job.state, "succeeded");
    assert.deepEqual(
      job.steps.map((s) => [s.name, s.state]),
      [
        ["Stop replication", "succeeded"],
        ["Remove from process server", "succeeded"],
        ["Delete replica", "skipped"],
      ],
    );
    const kept = new Set((await allBlobNames()).filter((n) => n.includes(m.machineId)));
    for (const name of blobsBefore) assert.ok(kept.has(name), `${name} is kept`);
    assert.equal((await machine()).state, "unprotected");
    await waitUntil("metrics without the machine", async () => !new RegExp(`machine_id="${m.machineId}"`).test(await metricsText(ps)), 10_000);

    const again = await srlabJson<JobDoc>(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
    assert.equal(again.state, "succeeded");
    await assertReplicaEqualsSource();
    // The new stream continued after the kept log: no segment name was written twice over a
    // different range, so the ranges in storage never overlap.
    const ranges = (await allBlobNames())
      .map((n) => /\/log\/(\d{20})-(\d{20})\.seg$/.exec(n))
      .filter((x): x is RegExpExecArray => Boolean(x?.input.includes(m.machineId)))
      .map((x) => [Number(x[1]), Number(x[2])] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]![0] > ranges[i - 1]![1], `segments ${ranges[i - 1]} and ${ranges[i]} do not overlap`);
  }, 600_000);

  test("disable-protection leaves no blob of the machine; protect again replicates from scratch byte-exact", async () => {
    const m = await waitCaughtUp(() => machine());
    const ps = m.processServer!;
    assert.ok((await allBlobNames()).some((n) => n.includes(m.machineId)), "the machine has blobs before it is disabled");
    assert.match(await metricsText(ps), new RegExp(`machine_id="${m.machineId}"`));

    const job = await srlabJson<JobDoc>(["disable-protection", "machine-1", "--dir", dir], 300_000);
    assert.equal(job.state, "succeeded");
    assert.deepEqual(
      job.steps.map((s) => s.name),
      ["Stop replication", "Remove from process server", "Delete replica"],
    );

    const left = (await allBlobNames()).filter((n) => n.includes(m.machineId));
    assert.deepEqual(left, [], "no blob whose name belongs to the machine remains");
    const off = await machine();
    assert.equal(off.state, "unprotected");
    assert.equal(off.processServer, null);
    const points = await srlabJson<{ points: unknown[] }>(["points", "machine-1", "--dir", dir]);
    assert.equal(points.points.length, 0);
    // Within a heartbeat and a scrape, the process server no longer reports it.
    await waitUntil("metrics without the machine", async () => !new RegExp(`machine_id="${m.machineId}"`).test(await metricsText(ps)), 10_000);

    // The agent keeps serving its disk, unprotected: writes land on the image and nothing replicates.
    const nbd = await connectNbd(off.disks[0]!.nbd);
    await nbd.write(7 * MiB + 1000, patternBytes(200_000, 901));
    await nbd.flush();
    await nbd.close();
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual((await allBlobNames()).filter((n) => n.includes(m.machineId)), [], "an unprotected machine writes nothing to storage");

    // Protecting again starts over with an initial replication.
    const again = await srlabJson<JobDoc>(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
    assert.equal(again.state, "succeeded");
    assert.ok(again.steps.some((s) => s.name === "Initial replication" && s.state === "succeeded"));
    assert.equal((await machine()).state, "protected");
    await assertReplicaEqualsSource();
  }, 600_000);

  test("disable-protection of an unprotected machine is one clear refusal", async () => {
    await srlabOk(["disable-protection", "machine-1", "--dir", dir], 300_000);
    const r = await srlab(["disable-protection", "machine-1", "--dir", dir]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /machine machine-1 is unprotected/);
  }, 300_000);
});
