import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe } from "vitest";
import { readSegmentHeader } from "../../common/segment/index.js";
import { srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { hasTool, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";
import { waitCaughtUp } from "../support/replication.js";

const run = promisify(execFile);

interface MachineStatus {
  name: string;
  rpoSeconds: number;
  pendingBytes: number;
  capturedSequence: number;
  receivedSequence: number;
  processedSequence: number;
  disks: Array<{ index: number; path: string; nbd: string }>;
}
interface KeyDoc {
  keyId: string;
  current: boolean;
  usedBy: string[];
}

let dir: string;
let work: string;
const tools = ["fio"].filter((t) => !hasTool(t));

async function machine(): Promise<MachineStatus> {
  const s = await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir]);
  return s.machines.find((m) => m.name === "machine-1")!;
}
const caughtUp = () => waitCaughtUp(machine);

function fio(uri: string, seed: number) {
  return run("fio", ["--name=w", "--ioengine=nbd", `--uri=${uri}`, "--rw=randwrite", "--bs=4k", "--size=4m", `--randseed=${seed}`]);
}

/** Every log segment of the lab's directory storage: key id and range from its header. */
function segmentHeaders(): Array<{ keyId: string; first: number; last: number }> {
  const found: Array<{ keyId: string; first: number; last: number }> = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".seg") && !p.includes("failback")) {
        const h = readSegmentHeader(readFileSync(p));
        found.push({ keyId: h.keyId, first: h.firstSequence, last: h.lastSequence });
      }
    }
  };
  walk(join(dir, "storage"));
  return found;
}

/** A test failover to one write, exported and compared with the source image at that write. */
async function failoverEquals(sequence: number, image: string): Promise<void> {
  const job = await srlabJson<{ state: string; result: { sequence: number } }>(
    ["failover", "machine-1", "--test", "--network", "isolated", "--seq", String(sequence), "--dir", dir],
    300_000,
  );
  assert.equal(job.state, "succeeded", JSON.stringify(job));
  assert.equal(job.result.sequence, sequence);
  const out = join(work, `seq-${sequence}.raw`);
  await srlabOk(["export", "machine-1", "--test", "--to", out, "--dir", dir], 120_000);
  assert.equal(await sha256File(out), await sha256File(image), `the disk recovered at sequence ${sequence} differs from the source`);
  await srlabOk(["failover-cleanup", "machine-1", "--dir", dir]);
}

test.beforeAll(async ({ startLab }) => {
  if (tools.length) return;
  ({ dir, work } = await startLab({ name: "keys", up: ["--machines", "1", "--disk-size", "32MiB", "--time-unit", "1s", "--storage", "directory"] }));
  await srlabOk(["network", "create", "isolated", "--address-space", "192.168.0.0/16", "--dir", dir]);
  // No crash-consistent point after the base: recovering after the rotation must replay segments of both keys.
  await srlabOk(["policy", "create", "sparse", "--crash-consistent", "1h", "--app-consistent", "2h", "--retention", "5h", "--dir", dir]);
  await srlabOk(["protect", "machine-1", "--policy", "sparse", "--wait", "--dir", dir], 300_000);
}, 600_000);

describe("segment key rotation (srlab keys rotate)", () => {
  test("new segments use the new key id; a write before the rotation and one after both recover byte-exact", async ({ skip }) => {
    if (tools.length) return skip(`${tools.join(", ")} not installed`);
    const m = await machine();
    await fio(m.disks[0]!.nbd, 21);
    const before = await caughtUp();
    const imageBefore = join(work, "before.img");
    copyFileSync(m.disks[0]!.path, imageBefore);

    const rotated = await srlabJson<KeyDoc & { previousKeyId: string }>(["keys", "rotate", "--json", "--dir", dir]);
    assert.equal(rotated.previousKeyId, "k1");
    assert.equal(rotated.keyId, "k2");
    assert.ok(rotated.current);
    // Process servers take the key with their next heartbeat; `keys list` shows who writes with what.
    const keys = await waitUntil(
      "every process server to write with the new key",
      async () => {
        const list = await srlabJson<KeyDoc[]>(["keys", "list", "--json", "--dir", dir]);
        const k1 = list.find((k) => k.keyId === "k1")!;
        const k2 = list.find((k) => k.keyId === "k2")!;
        return k1.usedBy.length === 0 && k2.usedBy.length > 0 ? list : undefined;
      },
      30_000,
    );
    assert.deepEqual(keys.map((k) => [k.keyId, k.current]), [["k1", false], ["k2", true]]);

    await fio(m.disks[0]!.nbd, 22);
    const after = await caughtUp();
    const imageAfter = join(work, "after.img");
    copyFileSync(m.disks[0]!.path, imageAfter);

    const segments = segmentHeaders();
    const old = segments.filter((s) => s.last <= before.receivedSequence);
    const fresh = segments.filter((s) => s.first > before.receivedSequence);
    assert.ok(old.length > 0 && fresh.length > 0, JSON.stringify(segments));
    assert.deepEqual([...new Set(old.map((s) => s.keyId))], ["k1"], "segments written before the rotation keep k1");
    assert.deepEqual([...new Set(fresh.map((s) => s.keyId))], ["k2"], "segments written after it carry k2 in their header");

    const points = await srlabJson<{ points: Array<{ sequence: number }> }>(["points", "machine-1", "--dir", dir]);
    assert.ok(
      points.points.filter((p) => p.sequence <= after.receivedSequence).every((p) => p.sequence <= before.receivedSequence),
      "no point after the rotation: the later recovery replays segments of both keys",
    );
    await failoverEquals(before.receivedSequence, imageBefore);
    await failoverEquals(after.receivedSequence, imageAfter);
  });
});

describe("credential rotation while replicating", () => {
  test("a replicating agent's rotated credential: its old stream is cut, it reopens with the new one, nothing is lost", async ({ skip }) => {
    if (tools.length) return skip(`${tools.join(", ")} not installed`);
    const m = await machine();
    const rotated = await srlabJson<{ credential: { credentialId: string }; revokedCredentialIds: string[] }>(
      ["credentials", "rotate", "machine-1", "--json", "--dir", dir],
      60_000,
    );
    assert.equal(rotated.revokedCredentialIds.length, 1);
    // Writes during and after the cut (the process server learns of the revocation within a heartbeat).
    await fio(m.disks[0]!.nbd, 23);
    const after = await caughtUp();
    const status = await srlabJson<{ machines: Array<{ name: string; state: string; health: string }> }>(["status", "--dir", dir]);
    const one = status.machines.find((x) => x.name === "machine-1")!;
    assert.equal(one.state, "protected", JSON.stringify(one));
    const out = join(work, "rotated.raw");
    await srlabOk(["export", "machine-1", "--to", out, "--dir", dir], 120_000);
    assert.equal(await sha256File(out), await sha256File(m.disks[0]!.path), `replica at sequence ${after.receivedSequence} equals the source`);
  });
});
