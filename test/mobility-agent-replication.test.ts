import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe } from "vitest";
import { status } from "@grpc/grpc-js";
import { digestOf } from "../common/blockhash/index.js";
import { BITMAP_BLOCK_BYTES, METADATA_RECORD_BYTES, runSync } from "../mobility-agent/index.js";
import { CaptureMode, ChecksumAlgorithm, WriteKind } from "../proto/index.js";
import { ASSIGNMENT, grpcError, until } from "./support/fake-process-server.js";
import { test } from "./support/fixtures.js";
import { KiB, logger, MiB, openMachine, pattern } from "./support/local-machine.js";

// Capture, sequencing and the shutdown marker are in mobility-agent.test.ts.
describe("mobility agent bitmap mode", () => {
  test("over both memory budgets payloads go to the bitmap; recovery sends exactly the dirty blocks", async ({ tempDir, fakeProcessServer }) => {
    const dir = tempDir();
    const size = 8 * MiB;
    const machine = openMachine(dir, { disks: [size], memoryBudgetBytes: 64 * KiB, metadataBudgetBytes: METADATA_RECORD_BYTES });
    machine.protect(ASSIGNMENT);
    const modes: CaptureMode[] = [];
    machine.capture.on("mode", (m) => modes.push(m));
    const e = machine.exports[0]!;
    // Blocks 0, 2 and 5 (two writes in block 5), 40 KiB each: the second write crosses 64 KiB, and
    // its two records as metadata cross the one-record metadata budget.
    e.write(0, pattern(40 * KiB, 1), false);
    e.write(2 * MiB + 4 * KiB, pattern(40 * KiB, 2), false);
    assert.deepEqual(modes, [CaptureMode.CAPTURE_MODE_METADATA, CaptureMode.CAPTURE_MODE_BITMAP]);
    assert.equal(machine.capture.mode, CaptureMode.CAPTURE_MODE_BITMAP);
    assert.equal(machine.capture.queuedRecords, 0, "queued payloads were dropped");
    e.write(5 * MiB, pattern(40 * KiB, 3), false);
    e.write(5 * MiB + 100 * KiB, pattern(40 * KiB, 4), false);
    assert.equal(machine.capture.dirtyBlocks, 3);
    assert.equal(machine.capture.pendingBytes, 3 * BITMAP_BLOCK_BYTES);
    assert.ok(existsSync(join(dir, "disk0.img.dirty-bitmap")), "the bitmap is persisted on the mode change");

    const { ps, replication } = fakeProcessServer(machine, [size]);
    await replication.assign("fake:1");
    await until("bitmap drained", () => machine.capture.dirtyBlocks === 0 && machine.capture.queuedRecords === 0);
    await machine.capture.whenAllDurable();

    assert.deepEqual(
      ps.received.map((r) => [r.sequence, r.kind, r.offset, r.length]),
      [
        [1, WriteKind.WRITE_KIND_DATA, 0, MiB],
        [2, WriteKind.WRITE_KIND_DATA, 2 * MiB, MiB],
        [3, WriteKind.WRITE_KIND_DATA, 5 * MiB, MiB],
      ],
      "dirty blocks re-read from the image with fresh, gap-free sequence numbers",
    );
    assert.equal(machine.capture.mode, CaptureMode.CAPTURE_MODE_DATA);
    assert.ok(!existsSync(join(dir, "disk0.img.dirty-bitmap")), "a clean bitmap is removed");
    assert.ok(ps.replicas[0]!.equals(machine.images[0]!.read(0, size)), "replica equals the image");

    // Back in data mode: a small write is queued with its payload again.
    e.write(7 * MiB, pattern(4 * KiB, 5), false);
    await until("write acked", () => ps.durable === 4);
    assert.equal(ps.received[3]!.length, 4 * KiB);
    await replication.stop();
    machine.close();
  });

  test("a burst walks data → metadata → bitmap → data and the replica ends byte-exact", async ({ tempDir, fakeProcessServer }) => {
    const size = 8 * MiB;
    const metadataRecords = 40;
    const machine = openMachine(tempDir(), {
      disks: [size],
      memoryBudgetBytes: 64 * KiB,
      metadataBudgetBytes: metadataRecords * METADATA_RECORD_BYTES,
    });
    machine.protect(ASSIGNMENT);
    const capture = machine.capture;
    const modes: CaptureMode[] = [];
    capture.on("mode", (m) => modes.push(m));
    const { ps, replication } = fakeProcessServer(machine, [size]);
    // The process server receives but holds its acks back: memory fills as under a slow link.
    ps.autoAck = false;
    await replication.assign("fake:1");
    await until("stream open", () => capture.isStreamOpen);
    const e = machine.exports[0]!;
    const tick = () => new Promise((r) => setTimeout(r, 2));

    // Data mode: payloads kept in memory until the budget (64 KiB) is crossed.
    for (let i = 0; i < 5; i++) e.write(i * 16 * KiB, pattern(16 * KiB, i), false);
    assert.equal(capture.mode, CaptureMode.CAPTURE_MODE_METADATA, "over the memory budget");
    assert.ok(capture.memoryBytes <= 64 * KiB, `unsent payloads were dropped (memory ${capture.memoryBytes})`);

    // Metadata mode: each write keeps offset and length only; overwrites of a range still queued
    // make the earlier record carry the later bytes when it is read at send time.
    for (let i = 0; i < 20; i++) {
      e.write(MiB + (i % 4) * 32 * KiB, pattern(32 * KiB, 100 + i), false);
      if (i % 3 === 0) await tick();
    }
    assert.equal(capture.mode, CaptureMode.CAPTURE_MODE_METADATA);
    await until("metadata records sent", () => ps.received.some((r) => r.readAtSequence > r.sequence));

    // A burst beyond the window and the metadata budget: bitmap mode.
    for (let i = 0; i < metadataRecords * 2; i++) e.write(2 * MiB + i * 8 * KiB, pattern(8 * KiB, 200 + i), false);
    assert.equal(capture.mode, CaptureMode.CAPTURE_MODE_BITMAP, "over the metadata budget");
    assert.ok(capture.dirtyBlocks > 0);
    await tick();

    // The process server catches up: the dirty blocks are re-read and capture is back in data mode.
    ps.autoAck = true;
    ps.ackNow();
    await until("bitmap drained", () => capture.dirtyBlocks === 0 && capture.queuedRecords === 0);
    assert.equal(capture.mode, CaptureMode.CAPTURE_MODE_DATA);
    e.write(7 * MiB, pattern(4 * KiB, 300), false);
    await capture.whenAllDurable();
    assert.equal(ps.received.at(-1)!.data.length, 4 * KiB, "data mode keeps payloads again");
    assert.equal(ps.received.at(-1)!.readAtSequence, 0);

    assert.deepEqual(modes, [CaptureMode.CAPTURE_MODE_METADATA, CaptureMode.CAPTURE_MODE_BITMAP, CaptureMode.CAPTURE_MODE_DATA]);
    assert.ok(ps.replicas[0]!.equals(machine.images[0]!.read(0, size)), "replica equals the image byte for byte");
    for (const mode of [CaptureMode.CAPTURE_MODE_DATA, CaptureMode.CAPTURE_MODE_METADATA, CaptureMode.CAPTURE_MODE_BITMAP]) {
      assert.ok(capture.secondsIn(mode) > 0, `time in ${CaptureMode[mode]} is counted`);
    }
    await replication.stop();
    machine.close();
  });

  test("a process server unreachable past N retries switches to bitmap mode, then recovers", async ({ tempDir, fakeProcessServer }) => {
    const size = 4 * MiB;
    const machine = openMachine(tempDir(), { disks: [size] });
    machine.protect(ASSIGNMENT);
    const { ps, replication } = fakeProcessServer(machine, [size], { bitmapAfterRetries: 1 });
    ps.reachable = false;
    const e = machine.exports[0]!;
    e.write(MiB, pattern(8 * KiB, 1), false);
    e.write(3 * MiB, pattern(8 * KiB, 2), false);
    await replication.assign("fake:1");
    await until("bitmap mode", () => machine.capture.mode === CaptureMode.CAPTURE_MODE_BITMAP);
    assert.equal(machine.capture.dirtyBlocks, 2);
    e.write(0, pattern(8 * KiB, 3), false);
    assert.equal(machine.capture.dirtyBlocks, 3, "new writes only mark blocks");
    assert.equal(replication.state, "retrying");

    ps.reachable = true;
    await until("recovered", () => machine.capture.dirtyBlocks === 0 && ps.received.length === 3 && machine.capture.queuedRecords === 0, 10_000);
    assert.deepEqual(
      ps.received.map((r) => [r.sequence, r.offset]),
      [
        [1, 0],
        [2, MiB],
        [3, 3 * MiB],
      ],
    );
    assert.ok(ps.replicas[0]!.equals(machine.images[0]!.read(0, size)));
    await replication.stop();
    machine.close();
  });

  test("a clean stop keeps unacknowledged writes in the bitmap for the next run", async ({ tempDir, fakeProcessServer }) => {
    const dir = tempDir();
    const size = 4 * MiB;
    let machine = openMachine(dir, { disks: [size] });
    machine.protect(ASSIGNMENT);
    machine.exports[0]!.write(2 * MiB, pattern(4 * KiB, 1), false);
    machine.close();
    machine = openMachine(dir, { disks: [size] });
    assert.equal(machine.capture.mode, CaptureMode.CAPTURE_MODE_BITMAP);
    assert.equal(machine.capture.dirtyBlocks, 1);
    assert.equal(machine.capture.resyncRequired, false);
    const { ps, replication } = fakeProcessServer(machine, [size]);
    await replication.assign("fake:1");
    await until("drained", () => ps.received.length === 1 && machine.capture.dirtyBlocks === 0);
    assert.equal(ps.received[0]!.sequence, 1, "numbers the server never held are reused, no gap");
    assert.ok(ps.replicas[0]!.equals(machine.images[0]!.read(0, size)));
    await replication.stop();
    machine.close();
  });
});

describe("mobility agent replication stream", () => {
  test("reconnects after a broken stream and resends what was not acknowledged", async ({ tempDir, fakeProcessServer }) => {
    const size = 2 * MiB;
    const machine = openMachine(tempDir(), { disks: [size] });
    machine.protect(ASSIGNMENT);
    const { ps, replication } = fakeProcessServer(machine, [size]);
    ps.autoAck = false;
    await replication.assign("fake:1");
    await until("open", () => replication.state === "streaming");
    machine.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    machine.exports[0]!.write(4 * KiB, pattern(4 * KiB, 2), false);
    await until("received", () => ps.received.length === 2);
    assert.equal(machine.capture.queuedRecords, 2, "not forgotten before the ack");
    ps.autoAck = true;
    ps.disconnect();
    await until("resent and acked", () => machine.capture.queuedRecords === 0);
    assert.equal(ps.received.length, 2, "held numbers are not applied twice");
    assert.ok(ps.opens.length >= 2);
    await replication.stop();
    machine.close();
  });

  test("a sequence gap halts replication and requires a resync", async ({ tempDir, fakeProcessServer }) => {
    const machine = openMachine(tempDir(), { disks: [MiB] });
    machine.protect(ASSIGNMENT);
    const { ps, replication } = fakeProcessServer(machine, [MiB]);
    ps.failBatchesWith = grpcError(status.FAILED_PRECONDITION, "sequence gap: expected 7, got 9");
    await replication.assign("fake:1");
    machine.exports[0]!.write(0, pattern(4 * KiB, 1), false);
    await until("halted", () => replication.state === "halted");
    assert.equal(machine.capture.resyncRequired, true);
    assert.equal(machine.capture.resyncReason, "sequence gap at the process server");
    await replication.stop();
    machine.close();
  });
});

describe("mobility agent sync", () => {
  test("resync sends only blocks whose checksums differ", async ({ tempDir, fakeProcessServer }) => {
    const block = 64 * KiB;
    const size = 8 * block;
    const machine = openMachine(tempDir(), { disks: [size] });
    machine.protect(ASSIGNMENT);
    const image = machine.images[0]!;
    const same = pattern(block, 1);
    image.write(0 * block, same);
    image.write(2 * block, pattern(block, 2));
    image.write(3 * block, pattern(block, 3));
    image.write(5 * block, pattern(block, 5));
    // The agent asks for XXH3-128; a checksum without page digests compares whole blocks.
    const sum = (b: Buffer) => ({ digest: digestOf(ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128, b), pageDigests: Buffer.alloc(0) });
    const { ps, replication } = fakeProcessServer(machine, [size]);
    ps.checksumOverride = new Map([
      [
        0,
        [
          { blockIndex: 0, ...sum(same) }, // equal: skipped
          { blockIndex: 2, ...sum(pattern(block, 99)) }, // differs: DATA
          // 3 missing: replica zero, source not: DATA
          { blockIndex: 5, digest: Buffer.alloc(0), pageDigests: Buffer.alloc(0) }, // empty = zero replica: DATA
          { blockIndex: 6, ...sum(pattern(block, 6)) }, // source zero, replica not: ZERO
          { blockIndex: 7, ...sum(Buffer.alloc(block)) }, // zero both (by digest): skipped
        ],
      ],
    ]);
    await replication.assign("fake:1");
    const progress: number[] = [];
    const result = await runSync(
      {
        capture: machine.capture,
        port: ps,
        machineId: "m1",
        timeUnitMs: 5,
        logger,
        onProgress: (p) => progress.push(p.progressPercent),
      },
      { mode: "resync", blockSize: block },
    );
    assert.equal(result.blocksCompared, 8);
    assert.equal(result.blocksSent, 4);
    assert.equal(result.zeroBlocksSent, 1);
    assert.equal(result.bytesSent, 3 * block);
    assert.deepEqual(
      ps.received.map((r) => [r.kind, r.offset / block]),
      [
        [WriteKind.WRITE_KIND_DATA, 2],
        [WriteKind.WRITE_KIND_DATA, 3],
        [WriteKind.WRITE_KIND_DATA, 5],
        [WriteKind.WRITE_KIND_ZERO, 6],
        // The sync ends by marking the disk's base: the process server takes a point there.
        [WriteKind.WRITE_KIND_BASE, 0],
      ],
    );
    assert.equal(result.endSequence, ps.received.at(-1)!.sequence);
    assert.equal(result.endSequence, ps.durable);
    assert.equal(progress.at(-1), 100);
    await replication.stop();
    machine.close();
  });

  test("initial copy of a live disk converges to a byte-exact replica and clears the resync flag", async ({ tempDir, fakeProcessServer }) => {
    const block = 64 * KiB;
    const size = 2 * MiB;
    const dir = tempDir();
    let machine = openMachine(dir, { disks: [size, MiB], memoryBudgetBytes: 256 * KiB });
    machine.protect(ASSIGNMENT);
    for (const image of machine.images) image.close(); // crash → resync required
    machine = openMachine(dir, { disks: [size, MiB], memoryBudgetBytes: 256 * KiB });
    assert.equal(machine.capture.resyncRequired, true);
    for (let i = 0; i < 12; i++) machine.images[i % 2]!.write((i * 3 + 1) * 40 * KiB, pattern(24 * KiB, i));
    const { ps, replication } = fakeProcessServer(machine, [size, MiB]);
    await replication.assign("fake:1");
    let writes = 0;
    ps.betweenChunks = () => {
      // Concurrent writes during the copy, ahead of and behind the compare, get later numbers.
      machine.exports[writes % 2]!.write((writes * 52 * KiB) % (MiB - 4 * KiB), pattern(4 * KiB, 100 + writes), false);
      writes++;
    };
    const result = await runSync({ capture: machine.capture, port: ps, machineId: "m1", timeUnitMs: 5, logger }, { mode: "initial", blockSize: block });
    await machine.capture.whenAllDurable();
    assert.ok(result.blocksSent > 0 && result.blocksSent < result.blocksCompared);
    assert.ok(writes > 0);
    for (let d = 0; d < 2; d++) assert.ok(ps.replicas[d]!.equals(machine.images[d]!.read(0, machine.images[d]!.size)), `disk ${d} equal`);
    assert.equal(machine.capture.resyncRequired, false);
    await replication.stop();
    machine.close();
    const again = openMachine(dir, { disks: [size, MiB] });
    assert.equal(again.capture.resyncRequired, false, "the cleared flag is persisted");
    again.close();
  });
});
