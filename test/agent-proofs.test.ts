import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { hashBuffer, deserializeSummary } from "../common/blockhash/index.js";
import { DiskFingerprint } from "../mobility-agent/disk-fingerprint.js";
import { DiskImage } from "../mobility-agent/disk-image.js";
import { WriteGate } from "../mobility-agent/write-gate.js";

const PAGE = 4096;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function image(size: number, content?: Buffer): DiskImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-proofs-"));
  dirs.push(dir);
  const file = path.join(dir, "disk.img");
  if (content) fs.writeFileSync(file, content);
  return new DiskImage(file, size);
}

describe("the agent's disk fingerprint", () => {
  test("writes during the initial build and after it give the fingerprint of the image", async () => {
    const size = 3 * 1024 * 1024 + 512; // more than one build chunk, a short last page
    const initial = randomBytes(size);
    const disk = image(size, initial);
    const fp = new DiskFingerprint(0, disk);
    const write = (offset: number, data: Buffer) => disk.write(offset, data, () => fp.written(offset, data));
    // While the build runs: one write far ahead of it, one unaligned write at the start.
    write(3 * 1024 * 1024 - 100, randomBytes(300));
    write(10, randomBytes(5000));
    await fp.ready();
    write(2 * PAGE + 7, randomBytes(PAGE));
    disk.writeZeroes(PAGE, 3 * PAGE, () => fp.zeroed(PAGE, 3 * PAGE));
    const proof = fp.proof();
    const bytes = fs.readFileSync(disk.imagePath);
    expect(proof.fingerprint).toBe(hashBuffer(bytes).fingerprint());
    // The summary describes the same disk: no ranges differ.
    expect(hashBuffer(bytes).diffSummary(deserializeSummary(proof.summary))).toEqual([]);
    disk.close();
  });

  test("writes to pages whose chunk a worker is hashing are hashed again once its leaves are in", async () => {
    const size = 24 * 1024 * 1024 + 3 * PAGE + 100; // several worker chunks, a short last page
    const disk = image(size, randomBytes(size));
    const fp = new DiskFingerprint(0, disk);
    const write = (offset: number, data: Buffer) => disk.write(offset, data, () => fp.written(offset, data));
    // Each turn until the tree is built, writes land just past what is in the tree (a chunk
    // in flight), across a page boundary, and far ahead; zeroes too.
    let turns = 0;
    while (!fp.isReady) {
      const at = fp.hashedBytes;
      if (at + 2 * PAGE + 50 <= size) write(at + PAGE - 20, randomBytes(PAGE + 70));
      if (at + 6 * 1024 * 1024 < size) write(at + 6 * 1024 * 1024 + 13, randomBytes(3000));
      if (at + 9 * PAGE <= size) disk.writeZeroes(at + 5 * PAGE, 2 * PAGE, () => fp.zeroed(at + 5 * PAGE, 2 * PAGE));
      turns++;
      await new Promise((r) => setImmediate(r));
    }
    await fp.ready();
    expect(turns).toBeGreaterThan(3);
    expect(fp.proof().fingerprint).toBe(hashBuffer(fs.readFileSync(disk.imagePath)).fingerprint());
    disk.close();
  });

  test("a rebuild picks up writes made behind the agent's back (failback through the master target)", async () => {
    const disk = image(1024 * 1024);
    const fp = new DiskFingerprint(0, disk);
    await fp.ready();
    fs.writeFileSync(disk.imagePath, randomBytes(PAGE), { flag: "r+" });
    fp.rebuild();
    await fp.ready();
    expect(fp.proof().fingerprint).toBe(hashBuffer(fs.readFileSync(disk.imagePath)).fingerprint());
    disk.close();
  });
});

describe("write gate", () => {
  test("holds writes in arrival order until released, and releases by itself at the timeout", async () => {
    const gate = new WriteGate();
    const order: number[] = [];
    gate.close(10_000, () => undefined);
    const held = [1, 2, 3].map((n) => gate.closed!.then(() => order.push(n)));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual([]);
    expect(gate.open()).toBeGreaterThanOrEqual(15);
    await Promise.all(held);
    expect(order).toEqual([1, 2, 3]);

    let expired = -1;
    gate.close(30, (ms) => {
      expired = ms;
    });
    await gate.closed;
    expect(expired).toBeGreaterThanOrEqual(25);
    expect(gate.isHeld).toBe(false);
  });
});
