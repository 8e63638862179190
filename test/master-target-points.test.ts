import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe } from "vitest";
import { silentLogger } from "../common/logger.js";
import { TargetRegistry } from "../master-target/target-registry.js";
import { RecoveryPointType, WriteKind, type WriteRecord } from "../proto/index.js";
import { test } from "./support/fixtures.js";
import { patternBytes } from "./support/images.js";
import { seededInts } from "../common/random/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [3 * MiB, 2 * MiB];
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Deterministic writes across both disks (unaligned, some spanning journal blocks, some zero). */
function writes(count: number, from: number, seed: number): WriteRecord[] {
  const rand = seededInts(seed);
  const out: WriteRecord[] = [];
  for (let i = 0; i < count; i++) {
    const sequence = from + i + 1;
    const diskIndex = rand(2);
    const length = 512 * (1 + rand(300));
    const offset = 512 * rand((SIZES[diskIndex]! - length) / 512);
    const zero = rand(8) === 0;
    out.push({
      sequence,
      kind: zero ? WriteKind.WRITE_KIND_ZERO : WriteKind.WRITE_KIND_DATA,
      diskIndex,
      offset,
      length,
      data: zero ? Buffer.alloc(0) : patternBytes(length, seed * 1000 + sequence),
      tagName: "",
      consistencyGroup: "",
      capturedAtMs: 0,
      readAtSequence: 0,
    });
  }
  return out;
}

function tag(sequence: number, tagName: string): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_TAG,
    diskIndex: 0,
    offset: 0,
    length: 0,
    data: Buffer.alloc(0),
    tagName,
    consistencyGroup: "",
    capturedAtMs: 0,
    readAtSequence: 0,
  };
}

describe("master target points of the way back", () => {
  test("a TAG snapshots the images; restoring a point gives them back byte for byte, after a restart too", async ({ tempDir }) => {
    const dir = tempDir();
    const datastore = join(dir, "datastore");
    const request = {
      machineId: "m1",
      disks: SIZES.map((sizeBytes, diskIndex) => ({ diskIndex, sizeBytes, imagePath: "" })),
      alternateLocation: true,
      datastore,
    };
    let registry = await TargetRegistry.open(join(dir, "targets"), datastore, silentLogger());
    const target = await registry.prepare(request);
    const images = () => target.disks.map((d) => sha(readFileSync(d.imagePath)));

    // Before any point nothing is journaled; then points at three tags, writes in between.
    let seq = 0;
    const batch1 = writes(60, seq, 1);
    seq += 60;
    await target.apply(batch1);
    const t1 = tag(++seq, "one");
    const afterFirst = await target.apply([t1, ...writes(40, seq, 2)]);
    seq += 40;
    assert.deepEqual(
      afterFirst.points.map((p) => [p.type, p.sequence, p.tagName]),
      [[RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT, t1.sequence, "one"]],
      "the batch's answer carries the point made at its TAG",
    );
    // The images at point "one" are the images after batch 1: rebuild them by replaying.
    const reference = await TargetRegistry.open(join(dir, "reference-targets"), join(dir, "reference"), silentLogger());
    const ref = await reference.prepare({ ...request, machineId: "ref" });
    await ref.apply(batch1);
    const atOne = ref.disks.map((d) => sha(readFileSync(d.imagePath)));

    const more = writes(50, seq, 3);
    seq += 50;
    const t2 = tag(++seq, "two");
    const tail = writes(30, seq, 4);
    seq += 30;
    await target.apply([...more, t2, ...tail]);
    await ref.apply([t1, ...writes(40, t1.sequence, 2), ...more]);
    const atTwo = ref.disks.map((d) => sha(readFileSync(d.imagePath)));
    await ref.apply([t2, ...tail]);
    assert.deepEqual(images(), ref.disks.map((d) => sha(readFileSync(d.imagePath))), "the images are the latest state");
    assert.deepEqual(
      target.points.map((p) => p.tagName),
      ["one", "two"],
    );

    // A restarted master target still has both points and restores the later one.
    await registry.close();
    registry = await TargetRegistry.open(join(dir, "targets"), datastore, silentLogger());
    const again = registry.require("m1");
    assert.deepEqual(
      again.points.map((p) => p.tagName),
      ["one", "two"],
    );
    const two = again.points[1]!;
    const restoredTwo = await again.restore(two.pointId);
    assert.equal(restoredTwo.appliedSequence, t2.sequence);
    assert.deepEqual(
      again.disks.map((d) => sha(readFileSync(d.imagePath))),
      atTwo,
      "images equal the state at tag two",
    );

    // Writes after the restore journal against point two; restoring point one undoes them too.
    await again.apply(writes(20, t2.sequence, 5));
    const one = again.points[0]!;
    const restoredOne = await again.restore(one.pointId);
    assert.equal(restoredOne.appliedSequence, t1.sequence);
    assert.deepEqual(
      again.disks.map((d) => sha(readFileSync(d.imagePath))),
      atOne,
      "images equal the state at tag one",
    );
    assert.deepEqual(
      again.points.map((p) => p.tagName),
      ["one"],
      "later points are gone",
    );
    await assert.rejects(again.restore(two.pointId), /no recovery point/);
    await registry.close();
    await reference.close();
  });
});
