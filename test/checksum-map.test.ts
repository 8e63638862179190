import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { BlockHashTree, blockDigest, pageDigests, xxh3TreeDigest } from "../common/blockhash/index.js";
import { seededInts } from "../common/random/index.js";
import { ApplyCostModel, applyRecords, type PageTarget } from "../common/replica/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import { blockChecksums } from "../process-server/checksums.js";
import { ReplicaChecksumMap } from "../process-server/pipeline/checksum-map.js";
import { type BlockChecksum, ChecksumAlgorithm, WriteKind, type WriteRecord } from "../proto/index.js";

const XXH3 = ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128;
const KiB = 1024;

/** An in-memory replica that tells the map what each apply reads and writes, as the replica sink does. */
class MemoryReplica implements PageTarget {
  constructor(readonly bytes: Buffer) {}
  async readPages(offset: number, length: number): Promise<Buffer> {
    return Buffer.from(this.bytes.subarray(offset, offset + length));
  }
  async writePages(offset: number, data: Buffer): Promise<void> {
    data.copy(this.bytes, offset);
  }
  async clearPages(offset: number, length: number): Promise<void> {
    this.bytes.fill(0, offset, offset + length);
  }
}

function observerOf(map: ReplicaChecksumMap) {
  return {
    read: (offset: number, data: Buffer) => map.observe(offset, data, map.mark()),
    write: (offset: number, data: Buffer, changed: readonly { offset: number; length: number }[]) => map.write(offset, data, changed),
    clear: (offset: number, length: number) => map.clear(offset, length),
  };
}

/** Overlapping writes, unaligned and aligned, some ZERO, in sequence. */
function writes(rand: (n: number) => number, diskBytes: number, first: number, count: number): WriteRecord[] {
  const out: WriteRecord[] = [];
  for (let i = 0; i < count; i++) {
    const aligned = rand(2) === 0;
    const length = aligned ? (1 + rand(32)) * 4 * KiB : 1 + rand(20 * KiB);
    const offset = aligned ? rand((diskBytes - length) / (4 * KiB)) * 4 * KiB : rand(diskBytes - length);
    const base = { sequence: first + i, diskIndex: 0, offset, length, tagName: "", consistencyGroup: "", readAtSequence: 0, capturedAtMs: 0 };
    if (rand(8) === 0) out.push({ ...base, kind: WriteKind.WRITE_KIND_ZERO, data: Buffer.alloc(0) });
    else out.push({ ...base, kind: WriteKind.WRITE_KIND_DATA, data: randomBytes(length) });
  }
  return out;
}

/** What the storage read path would answer for one block of these bytes. */
function expected(bytes: Buffer, index: number, blockSize: number, pageSize: number): BlockChecksum | undefined {
  const block = bytes.subarray(index * blockSize, Math.min(bytes.length, (index + 1) * blockSize));
  const digest = blockDigest(XXH3, block);
  if (digest.length === 0) return undefined;
  return { blockIndex: index, digest, pageDigests: pageSize > 0 ? pageDigests(XXH3, block, pageSize) : Buffer.alloc(0) };
}

/** Every block the map knows equals the replica's bytes; returns how many it knew. */
function expectMapMatches(map: ReplicaChecksumMap, bytes: Buffer, blockSize: number, pageSize: number): number {
  let known = 0;
  for (let b = 0; b < Math.ceil(bytes.length / blockSize); b++) {
    const answer = map.answer(b, blockSize, pageSize);
    if (answer.kind === "unknown") continue;
    known++;
    const want = expected(bytes, b, blockSize, pageSize);
    if (answer.kind === "zero") expect(want, `block ${b} is zero in the map`).toBeUndefined();
    else expect(answer.checksum, `block ${b}`).toEqual(want);
  }
  return known;
}

describe("XXH3 digests are nodes of the XXH3 block-hash tree", () => {
  test("a block's digest and its page digests equal the tree's nodes, short last page and block included", () => {
    // 300 KiB + 1000 bytes: a short last page inside a short last block.
    const size = 300 * KiB + 1000;
    const bytes = randomBytes(size);
    const tree = new BlockHashTree({ sizeBytes: size, pageSize: 4 * KiB, algorithm: XXH3 });
    tree.update(0, bytes);
    const blockSize = 64 * KiB;
    for (let b = 0; b < Math.ceil(size / blockSize); b++) {
      const block = bytes.subarray(b * blockSize, Math.min(size, (b + 1) * blockSize));
      // Level 4 holds 64 KiB nodes (16 pages); the last block's node is carried up from fewer.
      expect(xxh3TreeDigest(block).equals(tree.node(4, b)), `block ${b}`).toBe(true);
      const pages = pageDigests(XXH3, block, 16 * KiB);
      for (let p = 0; p < pages.length / 16; p++) expect(pages.subarray(p * 16, p * 16 + 16).equals(tree.node(2, b * 4 + p))).toBe(true);
    }
    expect(xxh3TreeDigest(bytes).equals(tree.root())).toBe(true);
  });

  test("the SHA-256 tree and its fingerprint are unchanged by the XXH3 variant", () => {
    const tree = new BlockHashTree({ sizeBytes: 10 * KiB });
    tree.update(0, Buffer.alloc(10 * KiB, 7));
    const xxh = new BlockHashTree({ sizeBytes: 10 * KiB, algorithm: XXH3 });
    expect(tree.hashBytes).toBe(32);
    expect(xxh.hashBytes).toBe(16);
    expect(tree.fingerprint()).toMatch(/^[0-9a-f]{64}$/);
    expect(() => xxh.fingerprint()).toThrow(/SHA-256/);
  });
});

describe("replica checksum map", () => {
  test("equals the replica's bytes under overlapping writes, run by run and block-wise", async () => {
    for (const blockWise of [false, true]) {
      const size = 2 * 1024 * KiB + 4 * KiB;
      const replica = new MemoryReplica(Buffer.alloc(size));
      const map = new ReplicaChecksumMap(size);
      // A new replica blob is all zeros: reading it once makes every page known.
      map.observe(0, await replica.readPages(0, size), map.mark());
      const rand = seededInts(blockWise ? 2 : 1);
      const cost = new ApplyCostModel({ perCallSeconds: 1, perByteSeconds: 0 });
      let sequence = 1;
      for (let batch = 0; batch < 20; batch++) {
        const records = writes(rand, size, sequence, 30);
        sequence += records.length;
        await applyRecords(replica, records, 0, size, { observer: observerOf(map), blocks: blockWise ? { cost } : undefined });
        expectMapMatches(map, replica.bytes, 64 * KiB, 4 * KiB);
      }
      // Partly written pages became unknown; a read fills them and then the whole map is known and right.
      map.observe(0, await replica.readPages(0, size), map.mark());
      expect(map.knownPages()).toBe(map.pageCount);
      expect(expectMapMatches(map, replica.bytes, 64 * KiB, 4 * KiB)).toBe(Math.ceil(size / (64 * KiB)));
      expect(expectMapMatches(map, replica.bytes, 256 * KiB, 16 * KiB)).toBe(Math.ceil(size / (256 * KiB)));
      expectMapMatches(map, replica.bytes, 64 * KiB, 0);
    }
  });

  test("block-wise apply reads whole blocks and so fills the pages it did not know", async () => {
    const size = 1024 * KiB;
    const replica = new MemoryReplica(randomBytes(size));
    const map = new ReplicaChecksumMap(size);
    // Eight small writes scattered over the first 64 KiB: one block read and write beat 8 + 8 calls.
    const records: WriteRecord[] = Array.from({ length: 8 }, (_, i) => ({
      sequence: i + 1,
      diskIndex: 0,
      offset: i * 8 * KiB + 100,
      length: 100,
      kind: WriteKind.WRITE_KIND_DATA,
      data: randomBytes(100),
      tagName: "",
      consistencyGroup: "",
      readAtSequence: 0,
      capturedAtMs: 0,
    }));
    const cost = new ApplyCostModel({ perCallSeconds: 1, perByteSeconds: 0 });
    await applyRecords(replica, records, 0, size, { observer: observerOf(map), blocks: { cost, minBlockBytes: 64 * KiB } });
    expect(map.knownPages()).toBeGreaterThanOrEqual(16);
    expect(expectMapMatches(map, replica.bytes, 64 * KiB, 4 * KiB)).toBeGreaterThanOrEqual(1);
  });

  test("a block write hashes only the pages its records changed; an unknown page it wrote becomes known", async () => {
    const size = 64 * KiB;
    const replica = new MemoryReplica(randomBytes(size));
    const map = new ReplicaChecksumMap(size);
    map.observe(0, await replica.readPages(0, size), map.mark());
    map.forget(5 * 4 * KiB, 4 * KiB);
    const before = Array.from({ length: 16 }, (_, p) => Buffer.from(map.tree.leaf(p)));
    const block = Buffer.from(replica.bytes);
    randomBytes(4 * KiB + 10).copy(block, 3 * 4 * KiB);
    await replica.writePages(0, block);
    const hashed = vi.spyOn(map.tree, "setPage");
    map.write(0, block, [{ offset: 3 * 4 * KiB, length: 4 * KiB + 10 }]);
    expect(hashed.mock.calls.map(([page]) => page)).toEqual([3, 4, 5]);
    expect(map.knownPages()).toBe(16);
    const tree = new BlockHashTree({ sizeBytes: size, pageSize: 4 * KiB, algorithm: XXH3 });
    tree.update(0, block);
    for (let p = 0; p < 16; p++) {
      expect(map.tree.leaf(p), `page ${p}`).toEqual(tree.leaf(p));
      // Pages 3 and 4 (changed) and 5 (was unknown) are hashed again; the others keep their digest.
      if (p < 3 || p > 5) expect(map.tree.leaf(p), `page ${p}`).toEqual(before[p]);
    }
    expect(expectMapMatches(map, replica.bytes, 64 * KiB, 4 * KiB)).toBe(1);
  });

  test("a read that raced with the applier never fills a page with older bytes", () => {
    const size = 64 * KiB;
    const map = new ReplicaChecksumMap(size);
    const mark = map.mark();
    const old = Buffer.alloc(size, 1);
    const fresh = Buffer.alloc(4 * KiB, 2);
    map.write(0, fresh); // the applier wrote page 0 after the read began
    map.observe(0, old, mark);
    const bytes = Buffer.concat([fresh, old.subarray(4 * KiB)]);
    expect(expectMapMatches(map, bytes, 64 * KiB, 4 * KiB)).toBe(1);
  });

  test("a known page that storage disagrees with makes the map unknown and is reported", () => {
    const size = 128 * KiB;
    const map = new ReplicaChecksumMap(size);
    map.write(0, Buffer.alloc(size, 3));
    const reported: { offset: number; length: number }[][] = [];
    map.onDisagreement = (ranges) => reported.push(ranges);
    const storage = Buffer.alloc(size, 3);
    storage.fill(9, 8 * KiB, 12 * KiB);
    expect(map.observe(0, storage, map.mark())).toEqual([{ offset: 8 * KiB, length: 4 * KiB }]);
    expect(reported).toEqual([[{ offset: 8 * KiB, length: 4 * KiB }]]);
    expect(map.knownPages()).toBe(0);
    // Rebuilt from the next read: now it says what storage holds.
    map.observe(0, storage, map.mark());
    expect(expectMapMatches(map, storage, 64 * KiB, 4 * KiB)).toBe(2);
  });

  test("its file form round-trips, and a torn or foreign file is refused", () => {
    const size = 1024 * KiB + 512;
    const map = new ReplicaChecksumMap(size);
    const bytes = randomBytes(size);
    map.write(0, bytes.subarray(0, 512 * KiB));
    map.coveredSequence = 42;
    const file = map.serialize();
    const back = ReplicaChecksumMap.deserialize(file, size);
    expect(back.coveredSequence).toBe(42);
    expect(back.knownPages()).toBe(map.knownPages());
    for (let b = 0; b < 8; b++) expect(back.answer(b, 64 * KiB, 4 * KiB)).toEqual(map.answer(b, 64 * KiB, 4 * KiB));
    const torn = Buffer.from(file);
    torn[40]! ^= 1;
    expect(() => ReplicaChecksumMap.deserialize(torn, size)).toThrow(/corrupt/);
    expect(() => ReplicaChecksumMap.deserialize(file.subarray(0, 100), size)).toThrow();
    expect(() => ReplicaChecksumMap.deserialize(file, size * 2)).toThrow();
  });
});

describe("block checksums from the map", () => {
  let root: string;
  let store: BlobStore;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "srlab-checksum-map-"));
    store = createBlobStore({ kind: "directory", directory: join(root, "store") });
    await store.init();
  });
  afterAll(async () => {
    await store?.close();
    await rm(root, { recursive: true, force: true });
  });

  const collect = async (gen: AsyncGenerator<{ checksums: BlockChecksum[]; totalBlocks: number }>) => {
    const out: BlockChecksum[] = [];
    let total = 0;
    for await (const m of gen) {
      out.push(...m.checksums);
      total = m.totalBlocks;
    }
    // Written all-zero blocks: an empty digest and a missing block mean the same.
    return { checksums: out.filter((c) => c.digest.length > 0), total };
  };

  test("answer what reading the replica answers, before and after the map knows it", async () => {
    const size = 3 * 1024 * KiB;
    const blob = "replica-a";
    await store.createPageBlob(blob, size);
    const target: PageTarget = {
      readPages: (o, l) => store.readPages(blob, o, l),
      writePages: (o, d) => store.writePages(blob, o, d),
      clearPages: (o, l) => store.clearPages(blob, o, l),
    };
    const map = new ReplicaChecksumMap(size);
    const rand = seededInts(5);
    await applyRecords(target, writes(rand, size, 1, 80), 0, size, { observer: observerOf(map) });
    const request = { blockSize: 64 * KiB, algorithm: XXH3, pageSize: 4 * KiB };
    const fromStorage = await collect(blockChecksums(store, blob, size, request));
    const known = map.knownPages();
    const fromMap = await collect(blockChecksums(store, blob, size, request, map));
    expect(fromMap).toEqual(fromStorage);
    // The first answer read only what the map did not know; now it knows everything.
    expect(known).toBeLessThan(map.pageCount);
    expect(map.knownPages()).toBe(map.pageCount);
    expect(await collect(blockChecksums(store, blob, size, request, map))).toEqual(fromStorage);
    // Other shapes the map covers, and a SHA-256 request, which stays on the storage read.
    for (const r of [
      { blockSize: 128 * KiB, algorithm: XXH3, pageSize: 0 },
      { blockSize: 1024 * KiB, algorithm: XXH3, pageSize: 64 * KiB },
      { blockSize: 64 * KiB, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_SHA256, pageSize: 4 * KiB },
      { blockSize: 64 * KiB, algorithm: XXH3, pageSize: 1 * KiB },
    ]) {
      expect(await collect(blockChecksums(store, blob, size, r, map))).toEqual(await collect(blockChecksums(store, blob, size, r)));
    }
  });
});
