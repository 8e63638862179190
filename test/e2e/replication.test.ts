import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { openSync, closeSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { ProcessServiceClient, WriteKind } from "../../proto/index.js";
import { bearerMetadata, channelCredentials } from "../../common/grpc/index.js";
import { LabLayout } from "../../cli/lab/index.js";
import { srlab, srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { connectNbd, hasTool, patternBytes, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

interface MachineStatus {
  machineId: string;
  name: string;
  state: string;
  health: string;
  rpoSeconds: number;
  pendingBytes: number;
  receivedSequence: number;
  capturedSequence: number;
  processedSequence: number;
  resyncRequired: boolean;
  disks: Array<{ path: string; sizeBytes: number; nbd: string; nbdUnix: string }>;
}
interface Status {
  caFile: string;
  components: Array<{ name: string; role: string; address: string }>;
  machines: MachineStatus[];
}

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
let dir: string;
let work: string;

async function machine(name: string): Promise<MachineStatus> {
  const s = await srlabJson<Status>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === name)!;
}

/** Waits until everything the machine wrote is in storage and applied to the replica. */
async function caughtUp(name: string): Promise<MachineStatus> {
  return waitCaughtUp(() => machine(name));
}

async function assertReplicaEqualsSource(name: string): Promise<void> {
  const m = await caughtUp(name);
  const out = join(work, `${name}-export.img`);
  const exported = await srlabJson<{ sha256: string; sizeBytes: number }>(["export", name, "--disk", "0", "--to", out, "--dir", dir]);
  const source = await sha256File(m.disks[0]!.path);
  assert.equal(exported.sizeBytes, m.disks[0]!.sizeBytes);
  assert.equal(await sha256File(out), exported.sha256, "export reports the hash of what it wrote");
  assert.equal(exported.sha256, source, `replica of ${name} equals its source image`);
  rmSync(out, { force: true });
}

function pidOf(name: string): number {
  return new LabLayout(dir).read().components.find((c) => c.name === name)!.pid;
}

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "repl", up: ["--machines", "2", "--disk-size", "32MiB", "--time-unit", "1s"] }));
  // Data that exists before protection must arrive through the initial replication.
  const m1 = await machine("machine-1");
  const nbd = await connectNbd(m1.disks[0]!.nbd);
  for (let i = 0; i < 8; i++) await nbd.write(i * 3 * MiB + 4096 * i, patternBytes(256 * 1024, 100 + i));
  await nbd.close();
});

afterAll(() => checkCaughtUpReplicas(dir));

describe("replication, end to end against Azurite", () => {
  test("protect runs the ASR jobs and the initial copy is byte-exact", async () => {
    const job = await srlabJson<{ state: string; steps: Array<{ name: string; state: string }> }>(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
    assert.equal(job.state, "succeeded");
    assert.deepEqual(
      job.steps.map((s) => s.name),
      ["Prerequisites check", "Enable protection", "Initial replication", "Finalize protection"],
    );
    await srlabOk(["protect", "machine-2", "--wait", "--dir", dir], 300_000);
    const m = await machine("machine-1");
    assert.equal(m.state, "protected");
    await assertReplicaEqualsSource("machine-1");
  });

  test("writes from our NBD client, unaligned and overlapping, replicate byte-exact", async () => {
    const m = await machine("machine-1");
    const nbd = await connectNbd(m.disks[0]!.nbd);
    for (let i = 0; i < 200; i++) {
      const offset = (i * 7919 * 13) % (DISK - 70_000);
      await nbd.write(offset, patternBytes(1 + ((i * 331) % 65_000), i));
    }
    await nbd.writeZeroes(5 * MiB + 123, 300_000);
    await nbd.flush();
    await nbd.close();
    await assertReplicaEqualsSource("machine-1");
  });

  test("pipelined overlapping writes on two connections land in arrival order and replicate byte-exact", async () => {
    const m = await machine("machine-1");
    const [a, b] = await Promise.all([connectNbd(m.disks[0]!.nbd), connectNbd(m.disks[0]!.nbdUnix)]);
    // Connection a hammers a 256 KiB region with overlapping writes and zeroes, hundreds in
    // flight; b writes disjoint ranges elsewhere meanwhile. Only arrival order may decide a's bytes.
    const region = 20 * MiB;
    const span = 256 * 1024;
    const model = await a.read(region, span);
    const pending: Promise<unknown>[] = [];
    const reads: Array<{ got: Promise<Buffer>; want: Buffer }> = [];
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 1500; i++) {
      const offset = next(span - 1);
      const length = 1 + next(Math.min(64 * 1024, span - offset) - 1);
      const kind = next(10);
      if (kind === 0) {
        model.fill(0, offset, offset + length);
        pending.push(a.writeZeroes(region + offset, length));
      } else if (kind === 1) {
        reads.push({ got: a.read(region + offset, length), want: Buffer.from(model.subarray(offset, offset + length)) });
      } else {
        const data = patternBytes(length, 1000 + i);
        data.copy(model, offset);
        pending.push(a.write(region + offset, data));
      }
      if (i % 3 === 0) pending.push(b.write(24 * MiB + (i % 512) * 8192, patternBytes(8192, 5000 + i)));
    }
    assert.ok(a.inFlight > 50, `writes were pipelined (${a.inFlight} in flight)`);
    await Promise.all([...pending, ...reads.map((r) => r.got)]);
    for (const [k, r] of reads.entries()) assert.ok((await r.got).equals(r.want), `read ${k} saw exactly the writes sent before it`);
    assert.ok((await a.read(region, span)).equals(model), "the source image holds the writes in arrival order");
    await Promise.all([a.flush(), b.flush()]);
    await Promise.all([a.close(), b.close()]);
    await assertReplicaEqualsSource("machine-1");
  });

  test("writes from qemu-io replicate byte-exact", async ({ skip }) => {
    if (!hasTool("qemu-io")) return skip("qemu-io not installed (apt-get install qemu-utils)");
    const m = await machine("machine-1");
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -P 0xab 1M 3M", "-c", "write -P 0x17 10M 64k", "-c", "write -z 2M 512k", m.disks[0]!.nbd]);
    await assertReplicaEqualsSource("machine-1");
  });

  test("writes from nbdcopy replicate byte-exact", async ({ skip }) => {
    if (!hasTool("nbdcopy")) return skip("nbdcopy not installed (apt-get install libnbd-bin)");
    const m = await machine("machine-2");
    const src = join(work, "source.img");
    const fd = openSync(src, "w");
    for (let i = 0; i < DISK / MiB; i += 3) writeSync(fd, patternBytes(MiB, 7000 + i), 0, MiB, i * MiB);
    closeSync(fd);
    execFileSync("truncate", ["-s", String(DISK), src]);
    execFileSync("nbdcopy", [src, m.disks[0]!.nbdUnix]);
    assert.equal(await sha256File(m.disks[0]!.path), await sha256File(src));
    await assertReplicaEqualsSource("machine-2");
  });

  test("writes from fio replicate byte-exact, and RPO returns to 0 with health normal", async ({ skip }) => {
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const m = await machine("machine-1");
    execFileSync("fio", [
      "--name=churn",
      "--ioengine=nbd",
      `--uri=${m.disks[0]!.nbd}`,
      "--rw=randwrite",
      "--bs=4k",
      "--size=16m",
      "--iodepth=16",
      "--verify=crc32c",
      "--do_verify=1",
    ]);
    await assertReplicaEqualsSource("machine-1");
    const after = await machine("machine-1");
    assert.equal(after.rpoSeconds, 0);
    assert.equal(after.health, "normal");
  });

  test("the workload generator's writes replicate byte-exact", async () => {
    await srlabOk(["workload", "machine-2", "--profile", "random", "--rate", "8MB/s", "--duration", "3s", "--seed", "42", "--dir", dir], 120_000);
    await assertReplicaEqualsSource("machine-2");
  });

  test("an app-consistent tag becomes a recovery point", async () => {
    await srlabOk(["tag", "machine-1", "--name", "before-upgrade", "--dir", dir], 120_000);
    const { points } = await srlabJson<{ points: Array<{ type: string; tagName: string | null; sequence: number }> }>(["points", "machine-1", "--dir", dir]);
    const tagged = points.find((p) => p.tagName === "before-upgrade");
    assert.ok(tagged, `points: ${JSON.stringify(points)}`);
    assert.equal(tagged.type, "app-consistent");
  });

  test("a wrong credential and out-of-range writes get clear gRPC errors; other machines are unharmed", async () => {
    const status = await srlabJson<Status>(["status", "--dir", dir]);
    const ps = status.components.find((c) => c.name === "process-server-1")!;
    const client = new ProcessServiceClient(ps.address, channelCredentials({ caFile: status.caFile }));
    const m1 = status.machines.find((m) => m.name === "machine-1")!;
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = client.replicate(bearerMetadata("agent/forged.bm90LWEtbWFj"));
      call.on("error", resolve);
      call.on("data", () => {});
      call.write({ message: { $case: "open", value: { machineId: m1.machineId, disks: [], resync: false } } });
    });
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.match(err.details, /credential/);
    client.close();

    // Past the end of the disk: the NBD client gets the protocol's error, nothing crashes.
    const nbd = await connectNbd(m1.disks[0]!.nbd);
    await assert.rejects(nbd.write(DISK - 100, Buffer.alloc(4096, 1)), /ENOSPC|error/i);
    await nbd.write(0, patternBytes(4096, 99));
    await nbd.close();
    void WriteKind;
    await assertReplicaEqualsSource("machine-1");
    await assertReplicaEqualsSource("machine-2");
  });

  test("killing the process server mid-stream loses nothing acknowledged", async () => {
    const workload = srlab(["workload", "machine-1", "--profile", "zipf", "--rate", "6MB/s", "--duration", "6s", "--seed", "7", "--dir", dir], 180_000);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(pidOf("process-server-1"), "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    await srlabOk(["up", "--detach", "--dir", dir]);
    const done = await workload;
    assert.equal(done.code, 0, done.stderr);
    await assertReplicaEqualsSource("machine-1");
  });

  test("killing the agent mid-stream: after restart the item resyncs and converges", async () => {
    const workload = srlab(["workload", "machine-1", "--profile", "random", "--rate", "6MB/s", "--duration", "10s", "--seed", "8", "--dir", dir], 60_000);
    await new Promise((r) => setTimeout(r, 2_000));
    process.kill(pidOf("machine-1"), "SIGKILL");
    await srlabOk(["up", "--detach", "--dir", dir]);
    // The restarted agent is a new process: the workload job died with the old one and ends.
    const ended = await workload;
    assert.notEqual(ended.code, 0, "the workload of the killed agent does not succeed");
    await waitUntil("resync required after an unclean shutdown", async () => (await machine("machine-1")).resyncRequired, 30_000);
    await srlabOk(["resync", "machine-1", "--wait", "--dir", dir], 300_000);
    await assertReplicaEqualsSource("machine-1");
  });

  test("resync after an unclean shutdown sends only the blocks that changed", async () => {
    const m = await caughtUp("machine-1");
    process.kill(pidOf("machine-1"), "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    // Writes the replica never saw: 3 distinct 1 MiB blocks changed behind the agent's back.
    const fd = openSync(m.disks[0]!.path, "r+");
    for (const block of [2, 9, 17]) writeSync(fd, patternBytes(1000, block), 0, 1000, block * MiB + 4096);
    closeSync(fd);
    await srlabOk(["up", "--detach", "--dir", dir]);
    await waitUntil("resync required", async () => (await machine("machine-1")).resyncRequired, 30_000);
    const job = await srlabJson<{ result: { blocksSent: number; blocksCompared: number } }>(["resync", "machine-1", "--wait", "--dir", dir], 300_000);
    assert.equal(job.result.blocksSent, 3, `result ${JSON.stringify(job.result)}`);
    assert.equal(job.result.blocksCompared, DISK / (64 * 1024), "64 KiB checksum blocks");
    await assertReplicaEqualsSource("machine-1");
    // The teardown invariant judges this machine: caught up, so its fingerprints are compared.
    const checked = await checkCaughtUpReplicas(dir);
    assert.ok(checked.some((c) => c.machine === "machine-1" && c.source === c.replica), JSON.stringify(checked));
  });
});
