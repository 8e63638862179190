import { join } from "node:path";
import { describe, expect } from "vitest";
import { blockDigest, checksumRequest, digestOf, pageDigests } from "../common/blockhash/index.js";
import { silentLogger } from "../common/logger.js";
import { Prng } from "../common/random/index.js";
import { blockDifferences, LocalMachine, runSync } from "../mobility-agent/index.js";
import { type BlockChecksum, ChecksumAlgorithm, WriteKind } from "../proto/index.js";
import { ASSIGNMENT } from "./support/fake-process-server.js";
import { test } from "./support/fixtures.js";

const KiB = 1024;
const XXH3 = ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128;
const request = { blockSize: 64 * KiB, algorithm: XXH3, pageSize: 4 * KiB };

function randomBytes(prng: Prng, length: number): Buffer {
  const b = Buffer.alloc(length);
  prng.fill(b);
  return b;
}

function checksumOf(blockIndex: number, block: Buffer): BlockChecksum {
  const digest = blockDigest(XXH3, block);
  return { blockIndex, digest, pageDigests: digest.length ? pageDigests(XXH3, block, request.pageSize) : Buffer.alloc(0) };
}

describe("block differences (two-level compare)", () => {
  const prng = new Prng(20261128);
  const replica = randomBytes(prng, request.blockSize);

  test("an equal block sends nothing", () => {
    expect(blockDifferences(Buffer.from(replica), checksumOf(0, replica), request)).toEqual([]);
  });

  test("changed pages travel as runs of adjacent pages, nothing else", () => {
    const source = Buffer.from(replica);
    source[5 * 4096 + 17] ^= 0xff; // page 5
    source.fill(7, 9 * 4096, 11 * 4096 + 1); // pages 9, 10 and 11
    source.fill(0, 14 * 4096, 15 * 4096); // page 14 becomes zero
    expect(blockDifferences(source, checksumOf(0, replica), request)).toEqual([
      { start: 5 * 4096, end: 6 * 4096, zero: false },
      { start: 9 * 4096, end: 12 * 4096, zero: false },
      { start: 14 * 4096, end: 15 * 4096, zero: true },
    ]);
  });

  test("over a zero replica only non-zero pages travel", () => {
    const source = Buffer.alloc(request.blockSize);
    source.fill(1, 4096, 3 * 4096);
    expect(blockDifferences(source, undefined, request)).toEqual([{ start: 4096, end: 3 * 4096, zero: false }]);
    expect(blockDifferences(Buffer.alloc(request.blockSize), undefined, request)).toEqual([]);
  });

  test("a zero source over a non-zero replica is one ZERO run; a zero replica named by its digest is equal", () => {
    const zero = Buffer.alloc(request.blockSize);
    expect(blockDifferences(zero, checksumOf(0, replica), request)).toEqual([{ start: 0, end: request.blockSize, zero: true }]);
    expect(blockDifferences(zero, { blockIndex: 0, digest: digestOf(XXH3, zero), pageDigests: Buffer.alloc(0) }, request)).toEqual([]);
  });

  test("without page digests a differing block travels whole", () => {
    const source = Buffer.from(replica);
    source[0] ^= 1;
    expect(blockDifferences(source, { ...checksumOf(0, replica), pageDigests: Buffer.alloc(0) }, request)).toEqual([
      { start: 0, end: request.blockSize, zero: false },
    ]);
  });

  test("the short last block of a disk compares by its short last page", () => {
    const short = replica.subarray(0, 10 * KiB);
    const source = Buffer.from(short);
    source[9 * KiB] ^= 1;
    expect(blockDifferences(source, checksumOf(0, short), request)).toEqual([{ start: 8 * KiB, end: 10 * KiB, zero: false }]);
  });

  test("a request the servers cannot honour is one clear error", () => {
    expect(() => checksumRequest({ blockSize: 64 * KiB, algorithm: 9 as ChecksumAlgorithm, pageSize: 0 })).toThrow("unknown checksum algorithm 9");
    expect(() => checksumRequest({ blockSize: 64 * KiB, algorithm: XXH3, pageSize: 3000 })).toThrow("power of two");
    expect(() => checksumRequest({ blockSize: 4 * KiB, algorithm: XXH3, pageSize: 8 * KiB })).toThrow("larger than block_size");
    expect(checksumRequest({ blockSize: 4 * KiB, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_UNSPECIFIED, pageSize: 0 }).algorithm).toBe(
      ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256,
    );
  });
});

describe("resync by pages", () => {
  test("scattered page changes send those pages only, and the replica ends byte-exact", async ({ tempDir, fakeProcessServer }) => {
    const dir = tempDir();
    const size = 1024 * KiB;
    const machine = LocalMachine.open({ dataDir: dir, disks: [{ path: join(dir, "disk0.img"), sizeBytes: size }], memoryBudgetBytes: 8 * 1024 * KiB, logger: silentLogger() });
    machine.protect(ASSIGNMENT);
    const prng = new Prng(7);
    const image = machine.images[0]!;
    const content = randomBytes(prng, size);
    content.fill(0, 512 * KiB, 576 * KiB); // one zero block
    image.write(0, content);
    // The replica equals the source except for scattered pieces the agent never saw.
    const replica = Buffer.from(content);
    const changed = [
      { offset: 4 * KiB, length: 4 * KiB },
      { offset: 200 * KiB, length: 12 * KiB },
      { offset: 700 * KiB, length: 4 * KiB },
    ];
    for (const c of changed) replica.fill(0xa5, c.offset, c.offset + c.length);
    replica.fill(0x11, 520 * KiB, 524 * KiB); // non-zero on the replica where the source is zero
    const { ps, replication } = fakeProcessServer(machine, [replica]);
    await replication.assign("fake:1");

    const result = await runSync({ capture: machine.capture, port: ps, machineId: "m1", timeUnitMs: 5, logger: silentLogger() }, { mode: "resync", blockSize: 64 * KiB });
    await machine.capture.whenAllDurable();

    expect(ps.received.filter((r) => r.kind !== WriteKind.WRITE_KIND_BASE).map((r) => [r.kind, r.offset / KiB, r.length / KiB])).toEqual([
      [WriteKind.WRITE_KIND_DATA, 4, 4],
      [WriteKind.WRITE_KIND_DATA, 200, 12],
      // The source block is all zero: one ZERO record (no payload) clears the replica's block.
      [WriteKind.WRITE_KIND_ZERO, 512, 64],
      [WriteKind.WRITE_KIND_DATA, 700, 4],
    ]);
    expect(result.bytesSent).toBe(20 * KiB);
    expect(result.blocksSent).toBe(4);
    expect(ps.replicas[0]!.equals(image.read(0, size))).toBe(true);
    machine.close();
  });
});
