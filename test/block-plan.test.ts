import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { ApplyCostModel, applyRecords, PAGE_SIZE, type PageTarget, planBlocks, type WriteRange } from "../common/replica/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import { seededInts } from "../common/random/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;

class MemoryTarget implements PageTarget {
  readonly reads: [number, number][] = [];
  readonly writes: [number, number][] = [];
  readonly clears: [number, number][] = [];
  constructor(readonly image: Buffer) {}
  private check(offset: number, length: number) {
    expect(offset % PAGE_SIZE).toBe(0);
    expect(length % PAGE_SIZE).toBe(0);
    expect(length).toBeGreaterThan(0);
    expect(offset + length).toBeLessThanOrEqual(this.image.length);
  }
  async readPages(offset: number, length: number) {
    this.check(offset, length);
    this.reads.push([offset, length]);
    return Buffer.from(this.image.subarray(offset, offset + length));
  }
  async writePages(offset: number, data: Buffer) {
    this.check(offset, data.length);
    expect(data.length).toBeLessThanOrEqual(4 * MiB);
    this.writes.push([offset, data.length]);
    data.copy(this.image, offset);
  }
  async clearPages(offset: number, length: number) {
    this.check(offset, length);
    this.clears.push([offset, length]);
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

function replay(base: Buffer, records: WriteRecord[]): Buffer {
  const img = Buffer.from(base);
  for (const r of [...records].sort((a, b) => a.sequence - b.sequence)) {
    if (r.kind === WriteKind.WRITE_KIND_DATA) r.data.copy(img, r.offset);
    else img.fill(0, r.offset, r.offset + r.length);
  }
  return img;
}

/** A model with fixed costs: `perCall` seconds per call plus `perByte` per byte, reads and writes alike. */
function fixedCost(perCall: number, perByte: number) {
  return (_kind: "read" | "write", bytes: number) => perCall + perByte * bytes;
}

function page(start: number, end: number): WriteRange {
  return { start, end, extents: [{ offset: start, length: end - start, data: [Buffer.alloc(end - start, 1)] }], reads: [] };
}


describe("block planner", () => {
  const options = { maxBlockBytes: 4 * MiB, minBlockBytes: 64 * KiB, maxWriteBytes: 4 * MiB };

  test("sparse runs stay page-wise: one call each, no block reads", () => {
    // Two 4 KiB writes 1 MiB apart: a block would read and write far more than it saves.
    const plan = planBlocks([page(0, 4 * KiB), page(MiB, MiB + 4 * KiB)], [], 16 * MiB, { ...options, cost: fixedCost(0.002, 4e-9) });
    expect(plan.map((r) => [r.start, r.end, r.reads.length])).toEqual([
      [0, 4 * KiB, 0],
      [MiB, MiB + 4 * KiB, 0],
    ]);
  });

  test("dense runs become whole blocks once calls cost more than the extra bytes", () => {
    // Every other 4 KiB page of the first 256 KiB: 32 runs.
    const runs = Array.from({ length: 32 }, (_, i) => page(i * 8 * KiB, i * 8 * KiB + 4 * KiB));
    const dear = planBlocks(runs, [], 16 * MiB, { ...options, cost: fixedCost(0.002, 4e-9) });
    expect(dear.length).toBe(1);
    expect(dear[0]).toMatchObject({ start: 0, reads: [{ start: 0, end: dear[0]!.end }] });
    expect(dear[0]!.end % (64 * KiB)).toBe(0);
    // Calls nearly free (a local directory): the same runs stay one call each.
    const cheap = planBlocks(runs, [], 16 * MiB, { ...options, cost: fixedCost(1e-6, 4e-9) });
    expect(cheap.length).toBe(32);
  });

  test("the density threshold follows the cost model", () => {
    // n runs of 4 KiB spread over one 64 KiB block (the smallest): page-wise n·(c + 4 KiB·b), block 2·(c + 64 KiB·b).
    const c = 0.001;
    const b = 1e-8;
    const pageWise = (n: number) => n * (c + 4 * KiB * b);
    const block = 2 * (c + 64 * KiB * b);
    for (let n = 1; n <= 8; n++) {
      const runs = Array.from({ length: n }, (_, i) => page(i * 8 * KiB, i * 8 * KiB + 4 * KiB));
      const plan = planBlocks(runs, [], 16 * MiB, { ...options, cost: fixedCost(c, b) });
      expect(plan.length === 1 && plan[0]!.end - plan[0]!.start >= 64 * KiB, `n = ${n}`).toBe(pageWise(n) > block);
    }
  });

  test("a block that the batch covers completely is written without reading it", () => {
    const runs = Array.from({ length: 16 }, (_, i) => page(i * 4 * KiB, (i + 1) * 4 * KiB - PAGE_SIZE));
    runs.push(...Array.from({ length: 16 }, (_, i) => page((i + 1) * 4 * KiB - PAGE_SIZE, (i + 1) * 4 * KiB)));
    runs.sort((x, y) => x.start - y.start);
    // The runs touch, so they are contiguous: exactly 64 KiB covered.
    const plan = planBlocks(runs, [], 16 * MiB, { ...options, cost: fixedCost(0.002, 4e-9) });
    expect(plan).toHaveLength(1);
    expect(plan[0]).toMatchObject({ start: 0, end: 64 * KiB, reads: [] });
  });

  test("blocks are clipped at the disk's end", async () => {
    // A disk of 4 MiB + 40 KiB: the last top block is only 40 KiB long, the last 64 KiB block too.
    const diskSize = 4 * MiB + 40 * KiB;
    const runs = Array.from({ length: 10 }, (_, i) => page(4 * MiB + i * 4 * KiB, 4 * MiB + i * 4 * KiB + PAGE_SIZE));
    const plan = planBlocks(runs, [], diskSize, { ...options, cost: fixedCost(0.002, 4e-9) });
    expect(plan).toHaveLength(1);
    expect(plan[0]).toMatchObject({ start: 4 * MiB, end: diskSize, reads: [{ start: 4 * MiB, end: diskSize }] });
  });

  test("regions with a clear stay page-wise", () => {
    const runs = [page(0, PAGE_SIZE), page(8 * KiB, 8 * KiB + PAGE_SIZE), page(40 * KiB, 40 * KiB + PAGE_SIZE)];
    const plan = planBlocks(runs, [{ start: 16 * KiB, end: 32 * KiB }], 16 * MiB, { ...options, cost: fixedCost(0.01, 1e-9) });
    for (const r of plan) expect(r.end <= 16 * KiB || r.start >= 32 * KiB).toBe(true);
  });

  test("a run crossing a block boundary is split there and both parts are kept", () => {
    const runs = [page(4 * MiB - 8 * KiB, 4 * MiB + 8 * KiB)];
    const plan = planBlocks(runs, [], 16 * MiB, { ...options, cost: fixedCost(0.002, 4e-9) });
    const covered = plan.reduce((n, r) => n + r.end - r.start, 0);
    expect(covered).toBe(16 * KiB);
  });
});

describe("block-wise apply", () => {
  test("overlapping writes within one block: the newest sequence wins, one read and one write", async () => {
    const diskSize = 4 * MiB;
    const base = randomBytes(diskSize);
    const records = [
      rec(1, 1000, Buffer.alloc(9000, 1)),
      rec(3, 5000, Buffer.alloc(700, 3)),
      rec(2, 4000, Buffer.alloc(30_000, 2)),
      zero(4, 6000, 100),
      rec(5, 50_000, Buffer.alloc(10, 5)),
      rec(6, 20_000, Buffer.alloc(3, 6)),
    ];
    const target = new MemoryTarget(Buffer.from(base));
    const stats = await applyRecords(target, records, 0, diskSize, { blocks: { cost: new ApplyCostModel({ perCallSeconds: 0.01, perByteSeconds: 1e-9 }) } });
    expect(sha(target.image)).toBe(sha(replay(base, records)));
    expect(stats.readCalls).toBe(1);
    expect(stats.writeCalls).toBe(1);
  });

  test("matches sequential replay for overlapping random 4–64 KiB writes, on and off", async () => {
    const diskSize = 16 * MiB + 12 * KiB;
    let callsOn = 0;
    let callsOff = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const r = seededInts(seed);
      const base = randomBytes(diskSize);
      const records: WriteRecord[] = [];
      for (let i = 0; i < 200; i++) {
        const length = (1 + (r(4) === 0 ? r(16) : r(2))) * 4 * KiB;
        // Half within the first 4 MiB (dense, overlapping), half anywhere; offsets unaligned.
        const offset = Math.min(diskSize - length, r(2) === 0 ? r(4 * MiB) : r(diskSize - length));
        records.push(r(10) === 0 ? zero(i + 1, offset, length) : rec(i + 1, offset, randomBytes(length)));
      }
      const expected = sha(replay(base, records));
      const off = new MemoryTarget(Buffer.from(base));
      const offStats = await applyRecords(off, records, 0, diskSize);
      const on = new MemoryTarget(Buffer.from(base));
      const onStats = await applyRecords(on, records, 0, diskSize, { blocks: { cost: new ApplyCostModel() } });
      expect(sha(off.image), `seed ${seed} off`).toBe(expected);
      expect(sha(on.image), `seed ${seed} on`).toBe(expected);
      callsOn += onStats.writeCalls + onStats.readCalls;
      callsOff += offStats.writeCalls + offStats.readCalls;
      // Calls never overlap: every page is written or cleared at most once.
      const calls = [...on.writes, ...on.clears].sort((x, y) => x[0] - y[0]);
      for (let k = 1; k < calls.length; k++) expect(calls[k]![0]).toBeGreaterThanOrEqual(calls[k - 1]![0] + calls[k - 1]![1]);
    }
    expect(callsOn).toBeLessThan(callsOff / 2);
  });

  test("the cost model learns per-call and per-byte costs from observed calls", () => {
    const model = new ApplyCostModel();
    for (let i = 0; i < 50; i++) {
      const bytes = (1 + (i % 10)) * 64 * KiB;
      model.observe("write", bytes, 0.003 + bytes * 2e-9);
    }
    const d = model.describe("write");
    expect(d.fitted).toBe(true);
    expect(d.perCallSeconds).toBeCloseTo(0.003, 4);
    expect(d.perByteSeconds).toBeCloseTo(2e-9, 11);
    // Reads not seen yet borrow the write line.
    expect(model.cost("read", MiB)).toBeCloseTo(0.003 + MiB * 2e-9, 6);
  });
});
