import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import { isAlive, LabLayout } from "../../cli/lab/index.js";
import { srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { checkCaughtUpReplicas } from "../support/convergence.js";
import { connectNbd, patternBytes, sha256File } from "../support/images.js";
import { type Lab, type StartLab, stopLab, test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

interface DiskDoc {
  path: string;
  nbd: string;
  blob?: string;
}
interface MachineStatus {
  name: string;
  state: string;
  direction: string;
  rpoSeconds: number;
  pendingBytes: number;
  receivedSequence: number;
  capturedSequence: number;
  processedSequence: number;
  disks: DiskDoc[];
  azureDisks: DiskDoc[];
}
interface JobDoc {
  state: string;
  bytesSent: number;
  /** A reprotect to on-premises nests its resync's counts under sync; a protection to Azure is the counts. */
  result: Record<string, unknown> & { blocksSent?: number; bytesSent?: number; sync?: { blocksSent: number; bytesSent: number }; targetDisks?: Array<{ imagePath: string }> };
}
interface PointDoc {
  id: string;
  type: string;
  tagName: string | null;
  sequence: number;
  direction: string;
}

/** SHA-256 of a whole disk read through its NBD export. */
async function nbdSha(uri: string, size: number): Promise<string> {
  const nbd = await connectNbd(uri);
  const hash = createHash("sha256");
  for (let at = 0; at < size; at += MiB) hash.update(await nbd.read(at, Math.min(MiB, size - at)));
  await nbd.close();
  return hash.digest("hex");
}

const MiB = 1024 * 1024;
const DISK = 32 * MiB;

/** One lab per describe, started in its beforeAll and stopped in its afterAll (not at the file's end, so two never run at once). */
function lab(name: string) {
  let started: Lab | undefined;
  let dir: string;
  let work: string;
  const machine = async (): Promise<MachineStatus> =>
    (await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir])).machines.find((m) => m.name === "machine-1")!;
  const caughtUp = () => waitCaughtUp(machine);
  const exportSha = async (args: string[]) => {
    const out = join(work, `export-${Date.now()}.img`);
    const r = await srlabJson<{ sha256: string }>(["export", "machine-1", "--to", out, "--dir", dir, ...args]);
    rmSync(out);
    return r.sha256;
  };
  /** Writes 40 KiB into each listed 1 MiB block through an NBD URI. */
  const writeBlocks = async (uri: string, blocks: number[], seed: number) => {
    const nbd = await connectNbd(uri);
    for (const b of blocks) await nbd.write(b * MiB + 4096, patternBytes(40_000, seed + b));
    await nbd.flush();
    await nbd.close();
  };
  const cleanup = async () => {
    // A lab that never started has nothing to check or stop; its start's own error is the one to see.
    if (!started) return;
    try {
      await checkCaughtUpReplicas(dir);
    } finally {
      await stopLab(started);
    }
  };
  /** Protect, write phase A on-prem, fail over with the source shut down, commit. */
  const intoAzure = async (startLab: StartLab) => {
    started = await startLab({ name, up: ["--machines", "1", "--disk-size", "32MiB", "--time-unit", "1s"] });
    ({ dir, work } = started);
    await srlabOk(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
    await writeBlocks((await machine()).disks[0]!.nbd, [0, 3, 7, 12, 20, 31], 10);
    await caughtUp();
    await srlabOk(["failover", "machine-1", "--point", "latest", "--shutdown-source", "--dir", dir], 300_000);
    await srlabOk(["commit", "machine-1", "--dir", dir], 300_000);
    return waitUntil("the Azure machine's NBD export", async () => {
      const m = await machine();
      return m.azureDisks[0]?.nbd ? m : undefined;
    });
  };
  return {
    get dir() {
      return dir;
    },
    machine,
    caughtUp,
    exportSha,
    writeBlocks,
    cleanup,
    intoAzure,
  };
}

describe("the full ASR cycle back to the original disk, byte-exact", () => {
  const l = lab("fb");
  test.beforeAll(({ startLab }) => l.intoAzure(startLab));
  afterAll(() => l.cleanup());

  test("on-prem → Azure → on-prem → Azure, each step sending only what changed", async () => {
    let m = await l.machine();
    assert.equal(m.state, "failover-committed");
    // Writes B in Azure, through the Azure machine's NBD export: 5 distinct 1 MiB blocks.
    const blocksB = [1, 3, 9, 17, 25];
    await l.writeBlocks(m.azureDisks[0]!.nbd, blocksB, 200);

    // Reprotect to the original disk; kill the master target while it runs.
    const started = await srlabJson<{ jobId: string }>(["reprotect", "machine-1", "--no-wait", "--dir", l.dir]);
    const mt = new LabLayout(l.dir).read().components.find((c) => c.name === "master-target")!;
    await waitUntil(
      "reverse replication to be enabled",
      async () => {
        const j = await srlabJson<JobDoc & { steps: Array<{ name: string; state: string }> }>(["jobs", "--job", started.jobId, "--dir", l.dir]);
        return j.steps.find((s) => s.name === "Enable reverse replication")?.state === "succeeded" || j.state !== "in-progress";
      },
      60_000,
      50,
    );
    process.kill(mt.pid, "SIGKILL");
    await srlabOk(["up", "--detach", "--dir", l.dir]);
    const reprotect = await waitUntil(
      "reprotect to finish",
      async () => {
        const j = await srlabJson<JobDoc>(["jobs", "--job", started.jobId, "--dir", l.dir]);
        return j.state === "succeeded" || j.state === "failed" ? j : undefined;
      },
      300_000,
      500,
    );
    assert.equal(reprotect.state, "succeeded", JSON.stringify(reprotect));
    assert.equal(reprotect.result.sync?.blocksSent, blocksB.length, "only the blocks B changed travel");
    assert.ok(Number(reprotect.result.sync?.bytesSent) <= blocksB.length * MiB, `bytes sent ${reprotect.result.sync?.bytesSent}`);
    assert.ok(reprotect.bytesSent < DISK / 4, "far less than the disk travelled");
    m = await l.machine();
    assert.equal(m.state, "protected");
    assert.equal(m.direction, "azure-to-on-premises");

    // More writes in Azure while replication runs back.
    await l.writeBlocks(m.azureDisks[0]!.nbd, [2, 25, 30], 300);
    const failback = await srlabJson<JobDoc>(["failback", "machine-1", "--dir", l.dir], 300_000);
    assert.equal(failback.state, "succeeded");
    const azureDisk = await l.exportSha(["--failed-over"]);
    assert.equal(await sha256File(m.disks[0]!.path), azureDisk, "on-prem image equals the Azure disk at failback");
    // The same proof from srlab itself: the agent's fingerprint of its image against the Azure disk's.
    const proof = await srlabJson<{ target: string; ok: boolean; disks: Array<{ index: number; ok: boolean }> }>(["verify", "machine-1", "--failed-back", "--dir", l.dir], 120_000);
    assert.equal(proof.target, "failed-back disks");
    assert.equal(proof.ok, true, JSON.stringify(proof));
    assert.deepEqual(proof.disks.map((d) => [d.index, d.ok]), [[0, true]]);

    await srlabOk(["commit", "machine-1", "--dir", l.dir], 120_000);
    m = await l.machine();
    assert.equal(m.azureDisks.length, 0, "the Azure machine is gone");
    assert.ok(!new LabLayout(l.dir).read().components.some((c) => c.name === "machine-1-azure"));
    assert.equal(m.direction, "on-premises-to-azure");

    // Protect to Azure again: only blocks that differ from the old replica travel.
    const again = await srlabJson<JobDoc>(["reprotect", "machine-1", "--dir", l.dir], 300_000);
    assert.equal(again.state, "succeeded");
    const changed = new Set([...blocksB, 2, 25, 30]);
    assert.equal(again.result.blocksSent, changed.size, JSON.stringify(again.result));
    await l.writeBlocks(m.disks[0]!.nbd, [4, 5, 6], 400);
    await l.caughtUp();
    assert.equal(await l.exportSha([]), await sha256File(m.disks[0]!.path), "replica exact after writes C");
  });
});

describe("failback to an alternate location", () => {
  const l = lab("fba");
  test.beforeAll(({ startLab }) => l.intoAzure(startLab));
  afterAll(() => l.cleanup());

  test("a full copy lands in a new image equal to the Azure disk; the machine moves onto it", async () => {
    const m = await l.machine();
    const original = m.disks[0]!.path;
    const originalSha = await sha256File(original);
    await l.writeBlocks(m.azureDisks[0]!.nbd, [8, 9], 500);
    const datastore = join(l.dir, "datastore");
    const reprotect = await srlabJson<JobDoc>(["reprotect", "machine-1", "--alternate-location", "--datastore", datastore, "--dir", l.dir], 300_000);
    assert.equal(reprotect.state, "succeeded");
    const image = reprotect.result.targetDisks![0]!.imagePath;
    assert.ok(image.startsWith(datastore), image);
    assert.notEqual(image, m.disks[0]!.path);
    await srlabOk(["failback", "machine-1", "--dir", l.dir], 300_000);
    assert.equal(await sha256File(image), await l.exportSha(["--failed-over"]));
    const agentPid = new LabLayout(l.dir).read().components.find((c) => c.name === "machine-1-azure")!.pid;
    await srlabOk(["commit", "machine-1", "--dir", l.dir], 120_000);
    assert.equal(isAlive(agentPid), false, "the Azure machine's agent stopped");

    // The on-premises machine runs on the new image: status shows it, NBD writes land in it.
    const back = await l.machine();
    assert.equal(back.disks[0]!.path, image, "status shows the new image path");
    const before = await sha256File(image);
    await l.writeBlocks(back.disks[0]!.nbd, [1, 14, 22], 800);
    assert.notEqual(await sha256File(image), before, "writes through the NBD export reach the new image");
    assert.equal(await sha256File(original), originalSha, "the old image is left untouched");

    // Protect to Azure again from the new image: the replica ends equal to it.
    const again = await srlabJson<JobDoc>(["reprotect", "machine-1", "--dir", l.dir], 300_000);
    assert.equal(again.state, "succeeded", JSON.stringify(again));
    await l.writeBlocks(back.disks[0]!.nbd, [3, 4], 900);
    await l.caughtUp();
    assert.equal(await l.exportSha([]), await sha256File(image), "replica equals the new image");
    assert.equal((await l.machine()).disks[0]!.path, image);
  });
});

describe("failback to an app-consistent point of the way back", () => {
  const l = lab("fbp");
  test.beforeAll(({ startLab }) => l.intoAzure(startLab));
  afterAll(() => l.cleanup());

  test("the master target keeps points while replicating back; failback to one equals the Azure disk at it", async () => {
    const reprotect = await srlabJson<JobDoc>(["reprotect", "machine-1", "--dir", l.dir], 300_000);
    assert.equal(reprotect.state, "succeeded", JSON.stringify(reprotect));
    const m = await l.machine();
    const azure = m.azureDisks[0]!.nbd;
    await l.writeBlocks(azure, [2, 5, 11], 600);
    const tag = await srlabJson<JobDoc>(["tag", "machine-1", "--name", "before-upgrade", "--json", "--dir", l.dir], 120_000);
    assert.equal(tag.state, "succeeded", JSON.stringify(tag));
    // Nothing writes between the tag and this read: the Azure disk as the point must hold it.
    const atTag = await nbdSha(azure, DISK);
    await l.writeBlocks(azure, [5, 6, 30], 700);

    const listBack = async () =>
      (await srlabJson<{ points: PointDoc[] }>(["points", "machine-1", "--dir", l.dir])).points.filter((p) => p.direction === "azure-to-on-premises");
    const app = (await listBack()).find((p) => p.type === "app-consistent" && p.tagName === "before-upgrade");
    assert.ok(app, "the tag made an app-consistent point on the way back");
    // Crash-consistent points on the failback policy's cadence (5 time units, seconds here).
    await waitUntil("a crash-consistent point of the way back after the tag", async () =>
      (await listBack()).some((p) => p.type === "crash-consistent" && p.sequence > app.sequence) || undefined,
      60_000,
      1_000,
    );

    const failback = await srlabJson<JobDoc>(["failback", "machine-1", "--point", "latest-app-consistent", "--json", "--dir", l.dir], 300_000);
    assert.equal(failback.state, "succeeded", JSON.stringify(failback));
    assert.equal(failback.result.recoveryPointId, app.id);
    assert.equal(await sha256File(m.disks[0]!.path), atTag, "on-prem image equals the Azure disk at the tag");
    assert.notEqual(atTag, await l.exportSha(["--failed-over"]), "the writes after the tag were given up");

    await srlabOk(["commit", "machine-1", "--dir", l.dir], 120_000);
    assert.deepEqual(await listBack(), [], "commit drops the points of the way back");
  });
});
