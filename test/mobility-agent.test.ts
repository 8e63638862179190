import assert from "node:assert/strict";
import { describe } from "vitest";
import { WriteKind } from "../proto/index.js";
import { ASSIGNMENT } from "./support/fake-process-server.js";
import { test } from "./support/fixtures.js";
import { batchOf, KiB, MiB, openMachine, pattern } from "./support/local-machine.js";

describe("mobility agent capture", () => {
  test("one sequence across two disks, in image-write order", ({ tempDir }) => {
    const machine = openMachine(tempDir(), { disks: [2 * MiB, 1 * MiB] });
    machine.protect(ASSIGNMENT);
    const [d0, d1] = machine.exports;
    d0!.write(0, pattern(4 * KiB, 1), false);
    d1!.write(8 * KiB, pattern(512, 2), false);
    d0!.writeZeroes(64 * KiB, 16 * KiB, true);
    d1!.write(0, pattern(4 * KiB, 3), false);
    const records = batchOf(machine);
    assert.deepEqual(
      records.map((r) => [r.sequence, r.diskIndex, r.kind, r.offset, r.length]),
      [
        [1, 0, WriteKind.WRITE_KIND_DATA, 0, 4 * KiB],
        [2, 1, WriteKind.WRITE_KIND_DATA, 8 * KiB, 512],
        [3, 0, WriteKind.WRITE_KIND_ZERO, 64 * KiB, 16 * KiB],
        [4, 1, WriteKind.WRITE_KIND_DATA, 0, 4 * KiB],
      ],
    );
    assert.deepEqual(records[1]!.data, pattern(512, 2));
    assert.equal(records[2]!.data.length, 0, "ZERO records carry no payload");
    assert.deepEqual(machine.images[1]!.read(8 * KiB, 512), pattern(512, 2), "the image is written before capture");
    machine.close();
  });

  test("writes before protection are not sequenced; the sequence survives a clean restart", ({ tempDir }) => {
    const dir = tempDir();
    let machine = openMachine(dir);
    machine.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    assert.equal(machine.capture.queuedRecords, 0);
    machine.protect(ASSIGNMENT);
    machine.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    machine.exports[0]!.write(4 * KiB, pattern(4 * KiB, 2), false);
    machine.capture.onOpened(0);
    batchOf(machine);
    machine.capture.onAck(2);
    machine.close();
    machine = openMachine(dir);
    assert.equal(machine.capture.armed, true);
    assert.equal(machine.capture.resyncRequired, false, "a clean stop needs no resync");
    machine.exports[0]!.write(0, pattern(4 * KiB, 3), false);
    assert.equal(batchOf(machine)[0]!.sequence, 3);
    machine.close();
  });

  test("acks forget records and resolve their waiters; a reconnect resends the rest", async ({ tempDir }) => {
    const machine = openMachine(tempDir());
    machine.protect(ASSIGNMENT);
    const e = machine.exports[0]!;
    for (let i = 0; i < 4; i++) e.write(i * 8 * KiB, pattern(8 * KiB, i), false);
    const { capture } = machine;
    capture.onOpened(0);
    const sent = batchOf(machine);
    assert.equal(sent.length, 4);
    assert.equal(capture.inFlightBytes, 32 * KiB);
    assert.equal(capture.nextBatch(MiB, MiB), undefined, "nothing left unsent");
    let secondDurable = false;
    void capture.whenDurable(sent[1]!).then(() => {
      secondDurable = true;
    });
    capture.onAck(2);
    await new Promise((r) => setImmediate(r));
    assert.ok(secondDurable);
    assert.equal(capture.queuedRecords, 2);
    assert.equal(capture.memoryBytes, 16 * KiB);
    assert.equal(capture.ackedSequence, 2);
    capture.onStreamClosed();
    capture.onOpened(3); // the server held one more than it acknowledged before the break
    assert.deepEqual(
      batchOf(machine).map((r) => r.sequence),
      [4],
    );
    capture.onAck(4);
    assert.equal(capture.queuedRecords, 0);
    assert.equal(capture.rpoSeconds(), 0);
    machine.close();
  });

  test("a process server holding numbers this agent never sent keeps every queued write and requires a resync", ({ tempDir }) => {
    const machine = openMachine(tempDir());
    machine.protect(ASSIGNMENT);
    const e = machine.exports[0]!;
    const { capture } = machine;
    e.write(0, pattern(4 * KiB, 1), false);
    e.write(4 * KiB, pattern(4 * KiB, 2), false);
    capture.onOpened(0);
    assert.deepEqual(batchOf(machine).map((r) => r.sequence), [1, 2]);
    assert.equal(capture.onAck(2), true);
    capture.onStreamClosed();
    // Three writes queue while the stream is down; another writer with this machine's identity
    // meanwhile fills the server's sequence up to 10.
    for (let i = 0; i < 3; i++) e.write((8 + i * 4) * KiB, pattern(4 * KiB, 10 + i), false);
    assert.equal(capture.queuedRecords, 3);
    capture.onOpened(10);
    assert.equal(capture.queuedRecords, 3, "no queued write is forgotten");
    assert.equal(capture.resyncRequired, true);
    assert.match(capture.resyncReason, /process server holds sequences 3\.\.10 this agent never sent/);
    const resent = batchOf(machine);
    assert.deepEqual(resent.map((r) => r.sequence), [11, 12, 13], "renumbered after the server's durable sequence");
    assert.deepEqual(resent.map((r) => r.data), [10, 11, 12].map((n) => pattern(4 * KiB, n)));
    machine.close();
  });

  test("an ack beyond what this agent sent requires a resync and asks for a new stream", ({ tempDir }) => {
    const machine = openMachine(tempDir());
    machine.protect(ASSIGNMENT);
    const { capture } = machine;
    machine.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    machine.exports[0]!.write(4 * KiB, pattern(4 * KiB, 2), false);
    capture.onOpened(0);
    assert.deepEqual(batchOf(machine).map((r) => r.sequence), [1, 2]);
    assert.equal(capture.onAck(7), false, "out of step");
    assert.equal(capture.resyncRequired, true);
    assert.match(capture.resyncReason, /acknowledged sequence 7, beyond the 2 this agent sent/);
    assert.equal(capture.queuedRecords, 0, "what it did send is acknowledged");
    machine.close();
  });

  test("an acknowledgement lost in a break is no disagreement", ({ tempDir }) => {
    const machine = openMachine(tempDir());
    machine.protect(ASSIGNMENT);
    const { capture } = machine;
    for (let i = 0; i < 3; i++) machine.exports[0]!.write(i * 4 * KiB, pattern(4 * KiB, i), false);
    capture.onOpened(0);
    batchOf(machine);
    capture.onStreamClosed();
    capture.onOpened(3); // the server made all three durable; the ack never arrived
    assert.equal(capture.resyncRequired, false);
    assert.equal(capture.queuedRecords, 0);
    machine.close();
  });

  test("pending changes above half the disk size require a resync", ({ tempDir }) => {
    const machine = openMachine(tempDir(), { disks: [1 * MiB] });
    machine.protect(ASSIGNMENT);
    machine.exports[0]!.write(0, pattern(256 * KiB, 1), false);
    assert.equal(machine.capture.resyncRequired, false);
    machine.exports[0]!.write(256 * KiB, pattern(300 * KiB, 2), false);
    assert.equal(machine.capture.resyncRequired, true);
    assert.equal(machine.capture.resyncReason, "pending changes exceed 50% of disk size");
    machine.close();
  });
});

describe("mobility agent shutdown marker", () => {
  test("a protected machine without the clean-shutdown marker needs a resync", ({ tempDir }) => {
    const dir = tempDir();
    const first = openMachine(dir);
    assert.equal(first.capture.resyncRequired, false, "first start is not an unclean shutdown");
    first.protect(ASSIGNMENT);
    first.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    // No close(): the process "crashed".
    for (const image of first.images) image.close();

    const second = openMachine(dir);
    assert.equal(second.capture.resyncRequired, true);
    assert.equal(second.capture.resyncReason, "unclean agent shutdown");
    second.close();

    const third = openMachine(dir);
    assert.equal(third.capture.resyncRequired, true, "still required until a resync completes");
    third.close();
  });

  test("an unprotected machine may stop uncleanly without a resync", ({ tempDir }) => {
    const dir = tempDir();
    const first = openMachine(dir);
    for (const image of first.images) image.close();
    const second = openMachine(dir);
    assert.equal(second.capture.resyncRequired, false);
    second.close();
  });
});
