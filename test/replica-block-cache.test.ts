import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { ApplyCostModel, applyRecords, type KnownReplica, PAGE_SIZE, type PageTarget, planBlocks, ReplicaBlockCache } from "../common/replica/index.js";
import { seededInts } from "../common/random/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const UNIT = 64 * KiB;

/** A replica in memory that counts the bytes read from it. */
class MemoryReplica implements PageTarget {
  bytesRead = 0;
  readCalls = 0;
  constructor(readonly image: Buffer) {}
  async readPages(offset: number, length: number) {
    expect(offset % PAGE_SIZE).toBe(0);
    expect(length % PAGE_SIZE).toBe(0);
    this.bytesRead += length;
    this.readCalls++;
    return Buffer.from(this.image.subarray(offset, offset + length));
  }
  async writePages(offset: number, data: Buffer) {
    data.copy(this.image, offset);
  }
  async clearPages(offset: number, length: number) {
    this.image.fill(0, offset, offset + length);
  }
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function rec(sequence: number, offset: number, bytes: Buffer): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset, length: bytes.length, data: bytes, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
}
function zero(sequence: number, offset: number, length: number): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_ZERO, diskIndex: 0, offset, length, data: Buffer.alloc(0), tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
}

function replay(image: Buffer, records: WriteRecord[]): void {
  for (const r of records) {
    if (r.kind === WriteKind.WRITE_KIND_DATA) r.data.copy(image, r.offset);
    else image.fill(0, r.offset, r.offset + r.length);
  }
}

/** `count` random 4–64 KiB writes (a tenth of them zeros), unaligned, overlapping, numbered from `first`. */
function randomWrites(seed: number, first: number, count: number, diskSize: number): WriteRecord[] {
  const r = seededInts(seed);
  const out: WriteRecord[] = [];
  for (let i = 0; i < count; i++) {
    const length = (1 + (r(4) === 0 ? r(16) : r(2))) * 4 * KiB + r(3) * 100;
    const offset = r(diskSize - length);
    out.push(r(10) === 0 ? zero(first + i, offset, length) : rec(first + i, offset, randomBytes(length)));
  }
  return out;
}

describe("replica block cache", () => {
  test("learns whole units, updates held ones, and says what it does not hold", () => {
    const cache = new ReplicaBlockCache(16 * UNIT);
    const view = cache.view(4 * UNIT);
    const data = randomBytes(2 * UNIT);
    // Unit 0 partly, unit 1 whole, unit 2 partly: only unit 1 is started.
    view.learn(UNIT / 2, data);
    expect(view.missing(0, 4 * UNIT)).toEqual([
      { start: 0, end: UNIT },
      { start: 2 * UNIT, end: 4 * UNIT },
    ]);
    const out = Buffer.alloc(UNIT, 0xee);
    expect(view.copyKnown(UNIT, out)).toEqual([{ start: UNIT, end: 2 * UNIT }]);
    expect(out.equals(data.subarray(UNIT / 2, UNIT / 2 + UNIT))).toBe(true);
    // A write to part of a held unit keeps it exact.
    const patch = randomBytes(4 * KiB);
    view.learn(UNIT + 8 * KiB, patch);
    view.copyKnown(UNIT, out);
    expect(out.subarray(8 * KiB, 12 * KiB).equals(patch)).toBe(true);
    expect(out.subarray(0, 8 * KiB).equals(data.subarray(UNIT / 2, UNIT / 2 + 8 * KiB))).toBe(true);
    // Forgetting any part of a unit forgets all of it.
    view.forget(UNIT + 512, 512);
    expect(view.missing(UNIT, 2 * UNIT)).toEqual([{ start: UNIT, end: 2 * UNIT }]);
    expect(cache.bytes).toBe(0);
  });

  test("the last unit of a disk that is not a multiple of the unit is held clipped", () => {
    const cache = new ReplicaBlockCache(16 * UNIT);
    const size = UNIT + 4 * KiB;
    const view = cache.view(size);
    const data = randomBytes(size);
    view.learn(0, data);
    expect(view.missing(0, size)).toEqual([]);
    const out = Buffer.alloc(4 * KiB);
    view.copyKnown(UNIT, out);
    expect(out.equals(data.subarray(UNIT))).toBe(true);
  });

  test("holds at most its budget, least recently used out first", () => {
    const cache = new ReplicaBlockCache(3 * UNIT);
    const view = cache.view(8 * UNIT);
    for (let u = 0; u < 3; u++) view.learn(u * UNIT, Buffer.alloc(UNIT, u + 1));
    // Unit 0 is used, so unit 1 is the oldest when unit 3 arrives.
    view.copyKnown(0, Buffer.alloc(UNIT));
    view.learn(3 * UNIT, Buffer.alloc(UNIT, 4));
    expect(cache.bytes).toBe(3 * UNIT);
    expect(view.missing(0, 4 * UNIT)).toEqual([{ start: UNIT, end: 2 * UNIT }]);
  });

  test("views are separate; a dropped view's bytes are gone; a zero budget holds nothing", () => {
    const cache = new ReplicaBlockCache(8 * UNIT);
    const a = cache.view(4 * UNIT);
    const b = cache.view(4 * UNIT);
    a.learn(0, Buffer.alloc(2 * UNIT, 1));
    expect(b.missing(0, 2 * UNIT)).toEqual([{ start: 0, end: 2 * UNIT }]);
    cache.drop(a);
    expect(a.missing(0, 2 * UNIT)).toEqual([{ start: 0, end: 2 * UNIT }]);
    expect(cache.bytes).toBe(0);
    const none = new ReplicaBlockCache(0).view(4 * UNIT);
    none.learn(0, Buffer.alloc(UNIT));
    expect(none.missing(0, UNIT)).toEqual([{ start: 0, end: UNIT }]);
  });
});

describe("block-wise apply with known replica bytes", () => {
  const cost = () => new ApplyCostModel({ perCallSeconds: 0.002, perByteSeconds: 4e-9 });

  test("the planner rewrites a known block whole where reading it first would not pay", () => {
    const view = new ReplicaBlockCache(64 * MiB).view(8 * MiB);
    view.learn(0, Buffer.alloc(4 * MiB));
    // Four aligned 4 KiB writes, 1 MiB apart: four calls (8 ms) against one 4 MiB write (6.2 ms),
    // or 12.4 ms with the block read first.
    const writes = [0, 1, 2, 3].map((m) => ({ start: m * MiB, end: m * MiB + 4 * KiB, extents: [{ offset: m * MiB, length: 4 * KiB, data: [Buffer.alloc(4 * KiB, m)] }], reads: [] }));
    const options = { maxBlockBytes: 4 * MiB, minBlockBytes: 64 * KiB, maxWriteBytes: 4 * MiB, cost: (_kind: "read" | "write", bytes: number) => 0.002 + bytes * 1e-9 };
    const known = planBlocks(writes, [], 8 * MiB, { ...options, missing: (s, e) => view.missing(s, e) });
    expect(known.map((r) => [r.start, r.end, r.reads.length])).toEqual([[0, 4 * MiB, 0]]);
    const unknown = planBlocks(writes, [], 8 * MiB, options);
    expect(unknown.map((r) => [r.start, r.end])).toEqual(writes.map((w) => [w.start, w.end]));
  });

  test("passes over known blocks read nothing, and the replica matches replay byte for byte", async () => {
    const diskSize = 8 * MiB + 12 * KiB;
    const base = randomBytes(diskSize);
    const replica = new MemoryReplica(Buffer.from(base));
    const expected = Buffer.from(base);
    const cache = new ReplicaBlockCache(64 * MiB);
    const known = cache.view(diskSize);
    let next = 1;
    const readsPerPass: number[] = [];
    for (let pass = 0; pass < 6; pass++) {
      const records = randomWrites(pass + 1, next, 300, diskSize);
      next += records.length;
      const before = replica.bytesRead;
      // A fresh model per pass plans with its fixed defaults: the same plan every run.
      await applyRecords(replica, records, 0, diskSize, { blocks: { cost: cost() }, known });
      readsPerPass.push(replica.bytesRead - before);
      replay(expected, records);
      expect(sha(replica.image), `pass ${pass}`).toBe(sha(expected));
    }
    // The first pass reads what it rewrites; later ones find nearly all of it known.
    expect(readsPerPass[0]).toBeGreaterThan(MiB);
    expect(Math.max(...readsPerPass.slice(2))).toBeLessThan(readsPerPass[0]! / 10);
  });

  test("a cache far smaller than the disk evicts during a pass and stays byte-exact", async () => {
    const diskSize = 8 * MiB;
    const base = randomBytes(diskSize);
    const replica = new MemoryReplica(Buffer.from(base));
    const expected = Buffer.from(base);
    const known = new ReplicaBlockCache(5 * UNIT).view(diskSize);
    let next = 1;
    for (let pass = 0; pass < 4; pass++) {
      const records = randomWrites(100 + pass, next, 200, diskSize);
      next += records.length;
      await applyRecords(replica, records, 0, diskSize, { blocks: { cost: cost() }, known, concurrency: 8 });
      replay(expected, records);
      expect(sha(replica.image), `pass ${pass}`).toBe(sha(expected));
    }
  });

  test("bytes known when the pass was planned but gone when its block is built are read instead", async () => {
    const diskSize = 4 * MiB;
    const base = randomBytes(diskSize);
    const replica = new MemoryReplica(Buffer.from(base));
    // Says everything is known while planning, then holds nothing (as if evicted meanwhile).
    const vanishing: KnownReplica = {
      missing: () => [],
      copyKnown: () => [],
      learn: () => {},
      forget: () => {},
    };
    const records = [rec(1, 100 * KiB + 7, randomBytes(3000)), rec(2, 3 * MiB, randomBytes(8 * KiB)), zero(3, 2 * MiB, 4 * KiB)];
    await applyRecords(replica, records, 0, diskSize, { blocks: { cost: cost() }, known: vanishing });
    const expected = Buffer.from(base);
    replay(expected, records);
    expect(sha(replica.image)).toBe(sha(expected));
    expect(replica.bytesRead).toBeGreaterThan(0);
  });

  test("a failed write leaves its range unknown", async () => {
    const diskSize = 4 * MiB;
    const replica = new MemoryReplica(randomBytes(diskSize));
    const known = new ReplicaBlockCache(64 * MiB).view(diskSize);
    known.learn(0, Buffer.from(replica.image));
    const failing: PageTarget = { ...replica, readPages: (o, l) => replica.readPages(o, l), clearPages: async () => {}, writePages: async () => Promise.reject(new Error("storage down")) };
    await expect(applyRecords(failing, [rec(1, 8 * KiB, randomBytes(4 * KiB))], 0, diskSize, { blocks: { cost: cost() }, known })).rejects.toThrow("storage down");
    expect(known.missing(0, diskSize).length).toBeGreaterThan(0);
  });
});
