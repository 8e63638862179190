import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe } from "vitest";
import { srlabJson, waitUntil } from "../support/cli.js";
import { connectNbd, patternBytes, sha256File } from "../support/images.js";
import { type Lab, test } from "../support/lab.js";

interface MachineStatus {
  name: string;
  state: string;
  receivedSequence: number;
  processedSequence: number;
  disks: Array<{ path: string; nbd: string }>;
}

const MiB = 1024 * 1024;
let lab: Lab;

async function machine(name: string): Promise<MachineStatus> {
  const s = await lab.json<{ machines: MachineStatus[] }>(["status"]);
  return s.machines.find((m) => m.name === name)!;
}

/** The status (fed by heartbeats) shows everything received as processed. */
async function appliedEverything(): Promise<void> {
  await waitUntil("processed = received in srlab status", async () => {
    const m = await machine("machine-1");
    return m.receivedSequence > 0 && m.processedSequence === m.receivedSequence;
  }, 10_000);
}

// The process server here would hold a small copy for ten minutes (segment delay) and pace its
// replica writes a minute apart: protect and resync finish in seconds only because the jobs ask
// it to upload and apply at once.
test.beforeAll(async ({ startLab }) => {
  lab = await startLab({
    name: "sync-finalize",
    up: ["--machines", "1", "--disk-size", "16MiB", "--time-unit", "1s"],
    env: { SRLAB_SEGMENT__MAX_DELAY_MS: "600000", SRLAB_APPLY__PASS_INTERVAL_MS: "60000" },
  });
  const m = await machine("machine-1");
  const nbd = await connectNbd(m.disks[0]!.nbd);
  for (let i = 0; i < 4; i++) await nbd.write(i * 3 * MiB + 512 * i, patternBytes(128 * 1024, 40 + i));
  await nbd.close();
});

describe("jobs that end with the replica processing a copy", () => {
  test("protect --wait ends once the initial copy is applied, without waiting out the segment delay", async () => {
    const t0 = Date.now();
    const job = await lab.json<{ state: string }>(["protect", "machine-1", "--wait"], 120_000);
    assert.equal(job.state, "succeeded");
    assert.ok(Date.now() - t0 < 60_000, `protect took ${Date.now() - t0} ms`);
    assert.equal((await machine("machine-1")).state, "protected");
    await appliedEverything();
  });

  test("resync --wait ends once the differing blocks are applied, and the replica equals the source", async () => {
    const m = await machine("machine-1");
    const nbd = await connectNbd(m.disks[0]!.nbd);
    await nbd.write(5 * MiB + 100, patternBytes(70_000, 7));
    await nbd.close();
    const t0 = Date.now();
    const job = await lab.json<{ state: string; result: { blocksCompared: number } }>(["resync", "machine-1", "--wait"], 120_000);
    assert.equal(job.state, "succeeded");
    assert.equal(job.result.blocksCompared, (16 * MiB) / (64 * 1024));
    assert.ok(Date.now() - t0 < 60_000, `resync took ${Date.now() - t0} ms`);
    await appliedEverything();
    const out = join(lab.work, "export.img");
    const exported = await srlabJson<{ sha256: string }>(["export", "machine-1", "--to", out, "--dir", lab.dir]);
    assert.equal(exported.sha256, await sha256File(m.disks[0]!.path), "replica equals the source");
    rmSync(out, { force: true });
  });
});
