import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import { LabLayout } from "../../cli/lab/index.js";
import { srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { connectNbd, patternBytes, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

interface MachineStatus {
  name: string;
  state: string;
  rpoSeconds: number;
  pendingBytes: number;
  receivedSequence: number;
  capturedSequence: number;
  processedSequence: number;
  disks: Array<{ path: string; nbd: string }>;
  failover: { sequence: number; recoveryPointId: string | null } | null;
  testFailover: unknown;
}
interface Point {
  id: string;
  sequence: number;
  type: string;
  tagName: string | null;
  processed: boolean;
  disks: string;
}
interface JobDoc {
  state: string;
  result: { sequence: number; achievedRpoSeconds: number; rtoSeconds: number; description: string; recoveryPointId: string | null };
  steps: Array<{ name: string; message: string | null }>;
}

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
let dir: string;
let work: string;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function machine(): Promise<MachineStatus> {
  const s = await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === "machine-1")!;
}

async function caughtUp(): Promise<MachineStatus> {
  return waitCaughtUp(machine);
}

async function exportSha(args: string[]): Promise<string> {
  const out = join(work, `export-${Date.now()}.img`);
  const r = await srlabJson<{ sha256: string }>(["export", "machine-1", "--to", out, "--dir", dir, ...args]);
  assert.equal(await sha256File(out), r.sha256);
  rmSync(out);
  return r.sha256;
}

async function points(): Promise<Point[]> {
  return (await srlabJson<{ points: Point[] }>(["points", "machine-1", "--dir", dir])).points;
}

/** Phase boundaries: hashes of the source image while writes are paused. */
const phase: Record<string, { sha: string; sequence: number }> = {};
let imageAtA: Buffer;
const phaseB: Array<{ offset: number; data: Buffer }> = [];
let tagPoint: Point;
let crashPoint: Point;

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "fo", up: ["--machines", "1", "--disk-size", "32MiB", "--time-unit", "1s"] }));
  for (const args of [
    ["network", "create", "prod", "--address-space", "10.0.0.0/16", "--subnet", "10.0.1.0/24", "--circuit", "er-1"],
    ["network", "create", "onprem", "--address-space", "172.16.0.0/16", "--circuit", "er-1", "--on-premises"],
    ["network", "create", "isolated", "--address-space", "192.168.0.0/16"],
    ["network", "map", "machine-1", "--network", "prod", "--subnet", "10.0.1.0/24", "--ip", "10.0.1.10"],
  ]) {
    await srlabOk([...args, "--dir", dir]);
  }
  await srlabOk(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
  const m = await machine();
  const nbd = await connectNbd(m.disks[0]!.nbd);
  // Phase A, then an app-consistent tag.
  for (let i = 0; i < 30; i++) await nbd.write((i * 1_048_573) % (DISK - 70_000), patternBytes(20_000 + i * 997, i));
  let s = await caughtUp();
  imageAtA = readFileSync(m.disks[0]!.path);
  phase.A = { sha: sha(imageAtA), sequence: s.receivedSequence };
  await srlabOk(["tag", "machine-1", "--name", "after-A", "--dir", dir], 120_000);
  tagPoint = (await points()).find((p) => p.tagName === "after-A")!;
  // Phase B: single writes, so write j has sequence tag + j.
  for (let j = 1; j <= 20; j++) {
    const w = { offset: (j * 524_309) % (DISK - 40_000), data: patternBytes(3_000 + j * 1_111, 500 + j) };
    phaseB.push(w);
    await nbd.write(w.offset, w.data);
  }
  s = await caughtUp();
  phase.B = { sha: await sha256File(m.disks[0]!.path), sequence: s.receivedSequence };
  // A crash-consistent point at the end of B (the lab's policy takes one every 5 s).
  crashPoint = await waitUntil(
    "a crash-consistent point after phase B",
    async () => (await points()).find((p) => p.type === "crash-consistent" && p.sequence === phase.B!.sequence),
    60_000,
    500,
  );
  // Phase C.
  for (let i = 0; i < 10; i++) await nbd.write(DISK - 200_000 + i * 10_000, patternBytes(9_000, 900 + i));
  await nbd.close();
  s = await caughtUp();
  phase.C = { sha: await sha256File(m.disks[0]!.path), sequence: s.receivedSequence };
});

afterAll(() => checkCaughtUpReplicas(dir));

async function testFailover(args: string[]): Promise<{ job: JobDoc; sha: string }> {
  const job = await srlabJson<JobDoc>(["failover", "machine-1", "--test", "--network", "isolated", ...args, "--dir", dir], 300_000);
  assert.equal(job.state, "succeeded");
  const got = await exportSha(["--test"]);
  await srlabOk(["failover-cleanup", "machine-1", "--dir", dir]);
  return { job, sha: got };
}

describe("failover to every kind of recovery point, byte-exact", () => {
  test("points list ids, sequences, types and processed state", async () => {
    const list = await points();
    assert.equal(tagPoint.type, "app-consistent");
    assert.equal(tagPoint.sequence, phase.A!.sequence + 1, "the tag follows phase A's last write");
    assert.ok(list.every((p) => p.processed));
    assert.ok(list.every((p) => p.disks === "1 of 1 disks"));
    assert.equal(phase.B!.sequence, tagPoint.sequence + phaseB.length);
  });

  test("latest-app-consistent equals the source at the tag", async () => {
    const { sha: got, job } = await testFailover(["--point", "latest-app-consistent"]);
    assert.equal(got, phase.A!.sha);
    assert.equal(job.result.sequence, tagPoint.sequence);
  });

  test("a crash-consistent point by id equals the source at the end of phase B", async () => {
    const { sha: got } = await testFailover(["--point", crashPoint.id]);
    assert.equal(got, phase.B!.sha);
  });

  test("--seq in the middle of phase B equals a replay of the writes up to it", async () => {
    const k = 11;
    const expected = Buffer.from(imageAtA);
    for (const w of phaseB.slice(0, k)) w.data.copy(expected, w.offset);
    const { sha: got, job } = await testFailover(["--seq", String(tagPoint.sequence + k)]);
    assert.equal(job.result.sequence, tagPoint.sequence + k);
    assert.equal(got, sha(expected));
  });

  test("latest equals the source after phase C; latest-processed is the newest point", async () => {
    const latest = await testFailover(["--point", "latest"]);
    assert.equal(latest.sha, phase.C!.sha);
    assert.ok(latest.job.result.achievedRpoSeconds >= 0);
    const newest = (await points()).at(-1)!;
    const processed = await testFailover(["--point", "latest-processed"]);
    assert.equal(processed.job.result.sequence, newest.sequence);
    if (newest.sequence === phase.C!.sequence) assert.equal(processed.sha, phase.C!.sha);
    if (newest.sequence === phase.B!.sequence) assert.equal(processed.sha, phase.B!.sha);
  });

  test("a test failover with a workload running leaves replication undisturbed", async () => {
    const workload = srlab(["workload", "machine-1", "--profile", "random", "--rate", "4MB/s", "--duration", "4s", "--dir", dir], 120_000);
    const { sha: got } = await testFailover(["--point", crashPoint.id]);
    assert.equal(got, phase.B!.sha);
    assert.equal((await workload).code, 0);
    const m = await caughtUp();
    assert.equal(m.state, "protected");
    assert.equal(await exportSha([]), await sha256File(m.disks[0]!.path));
    phase.C = { sha: await sha256File(m.disks[0]!.path), sequence: m.receivedSequence };
  });

  test("the network rules of seed 000 are enforced with clear reasons", async () => {
    const intoProduction = await srlab(["failover", "machine-1", "--test", "--network", "prod", "--dir", dir]);
    assert.notEqual(intoProduction.code, 0);
    assert.match(intoProduction.stderr, /production network prod/);
    const noNetwork = await srlab(["failover", "machine-1", "--test", "--dir", dir]);
    assert.match(noNetwork.stderr, /needs --network/);
    const overlap = await srlab(["network", "create", "dr", "--address-space", "172.16.8.0/24", "--circuit", "er-1", "--dir", dir]);
    assert.notEqual(overlap.code, 0);
    assert.match(overlap.stderr, /overlaps onprem .*circuit er-1/);
    const unknown = await srlab(["failover", "machine-1", "--test", "--network", "isolated", "--point", "no-such-point", "--dir", dir]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no-such-point/);
    const early = await srlab(["commit", "machine-1", "--dir", dir]);
    assert.match(early.stderr, /is protected; commit needs a failed-over machine/);
  });

  test("failover while the process server is down uses what storage holds", async () => {
    const pid = new LabLayout(dir).read().components.find((c) => c.name === "process-server-1")!.pid;
    process.kill(pid, "SIGKILL");
    try {
      const { sha: got, job } = await testFailover(["--point", "latest"]);
      assert.equal(got, phase.C!.sha, "everything was uploaded before the process server died");
      assert.ok(job.steps.some((s) => /unreachable|using what storage holds/.test(s.message ?? "")), JSON.stringify(job.steps));
    } finally {
      await srlabOk(["up", "--detach", "--dir", dir]);
    }
  });

  test("--shutdown-source stops writes, drains and loses nothing; change-point and commit", async () => {
    const m = await machine();
    const nbd = await connectNbd(m.disks[0]!.nbd);
    for (let i = 0; i < 10; i++) await nbd.write(i * 2 * MiB, patternBytes(50_000, 7_000 + i));
    const job = await srlabJson<JobDoc>(["failover", "machine-1", "--point", "latest", "--shutdown-source", "--dir", dir], 300_000);
    assert.equal(job.state, "succeeded");
    assert.ok(job.result.rtoSeconds > 0);
    // The source refuses writes now.
    await assert.rejects(nbd.write(0, Buffer.alloc(512, 1)));
    await nbd.close().catch(() => {});
    const source = await sha256File(m.disks[0]!.path);
    assert.equal(await exportSha(["--failed-over"]), source, "zero data loss");
    const after = await machine();
    assert.equal(after.state, "failed-over");

    await srlabOk(["change-point", "machine-1", "--point", tagPoint.id, "--dir", dir], 300_000);
    assert.equal(await exportSha(["--failed-over"]), phase.A!.sha);

    await srlabOk(["commit", "machine-1", "--dir", dir], 120_000);
    const left = await points();
    assert.deepEqual(left.map((p) => p.id), [tagPoint.id], "commit deletes the other points");
    assert.equal((await machine()).state, "failover-committed");
    const late = await srlab(["change-point", "machine-1", "--point", "latest", "--dir", dir]);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /failover-committed/);
  });
});
