import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "vitest";
import { applyRecords, coalesceWrites, copyExtent, PAGE_SIZE, type PageTarget } from "../common/replica/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import { seededInts } from "../common/random/index.js";

/** In-memory page blob that enforces alignment and logs every call. */
class MemoryTarget implements PageTarget {
  readonly reads: [number, number][] = [];
  readonly writes: [number, number][] = [];
  readonly clears: [number, number][] = [];
  constructor(readonly image: Buffer) {}
  private check(offset: number, length: number) {
    assert.equal(offset % PAGE_SIZE, 0, `unaligned offset ${offset}`);
    assert.equal(length % PAGE_SIZE, 0, `unaligned length ${length}`);
    assert.ok(length > 0 && offset + length <= this.image.length, `out of range ${offset}+${length}`);
  }
  async readPages(offset: number, length: number) {
    this.check(offset, length);
    this.reads.push([offset, length]);
    return Buffer.from(this.image.subarray(offset, offset + length));
  }
  async writePages(offset: number, data: Buffer) {
    this.check(offset, data.length);
    assert.ok(data.length <= 4 * 1024 * 1024);
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

function data(sequence: number, offset: number, bytes: Buffer, diskIndex = 0): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_DATA, diskIndex, offset, length: bytes.length, data: bytes, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
}
function zero(sequence: number, offset: number, length: number, diskIndex = 0): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_ZERO, diskIndex, offset, length, data: Buffer.alloc(0), tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
}

/** Plain sequential replay: the reference every apply must match. */
function replay(base: Buffer, records: WriteRecord[], diskIndex: number): Buffer {
  const img = Buffer.from(base);
  for (const r of [...records].sort((a, b) => a.sequence - b.sequence)) {
    if (r.diskIndex !== diskIndex) continue;
    if (r.kind === WriteKind.WRITE_KIND_DATA) r.data.copy(img, r.offset);
    else if (r.kind === WriteKind.WRITE_KIND_ZERO) img.fill(0, r.offset, r.offset + r.length);
  }
  return img;
}

/** Pages touched by some extent but not fully covered: exactly the ones apply may read. */
function partialPages(records: WriteRecord[], diskIndex: number): Set<number> {
  const covered = new Map<number, number>();
  for (const e of coalesceWrites(records, diskIndex)) {
    for (let p = Math.floor(e.offset / PAGE_SIZE); p * PAGE_SIZE < e.offset + e.length; p++) {
      const s = Math.max(e.offset, p * PAGE_SIZE);
      const en = Math.min(e.offset + e.length, (p + 1) * PAGE_SIZE);
      covered.set(p, (covered.get(p) ?? 0) + en - s);
    }
  }
  return new Set([...covered].filter(([, n]) => n < PAGE_SIZE).map(([p]) => p));
}

function randomRecords(seed: number, n: number, diskSize: number): WriteRecord[] {
  const r = seededInts(seed);
  const out: WriteRecord[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r(10);
    // Mix of tiny, page-ish and large writes, clustered so they overlap often.
    const len = kind < 5 ? 1 + r(700) : kind < 8 ? 1 + r(20_000) : 1 + r(300_000);
    const offset = r(10) < 7 ? r(Math.min(diskSize - len, 200_000)) : r(diskSize - len);
    const seq = 1000 + i;
    const disk = r(8) === 0 ? 1 : 0;
    if (r(6) === 0) out.push(zero(seq, offset, len, disk));
    else out.push(data(seq, offset, randomBytes(len), disk));
    if (r(20) === 0) out.push({ ...zero(seq, 0, 0), kind: WriteKind.WRITE_KIND_TAG, tagName: "t" });
  }
  // Tags reuse sequences above; give everything unique, ordered sequences.
  return out.map((rec, i) => ({ ...rec, sequence: 1000 + i }));
}

describe("replica apply", () => {
  it("matches sequential replay for random unaligned, overlapping and zero writes", async () => {
    const diskSize = 8 * 1024 * 1024;
    for (let seed = 1; seed <= 25; seed++) {
      const base = randomBytes(diskSize);
      const records = randomRecords(seed, 200, diskSize);
      const expected = replay(base, records, 0);
      const target = new MemoryTarget(Buffer.from(base));
      // Shuffle: apply must order by sequence itself.
      const shuffled = [...records].sort(() => Math.random() - 0.5);
      const stats = await applyRecords(target, shuffled, 0, diskSize, { clearThresholdBytes: 8192, maxWriteBytes: 64 * 1024 });
      assert.equal(sha(target.image), sha(expected), `seed ${seed}`);

      // Edge reads are minimal: every partially covered page read exactly once, nothing else.
      const readPages: number[] = [];
      for (const [o, l] of target.reads) for (let p = o / PAGE_SIZE; p < (o + l) / PAGE_SIZE; p++) readPages.push(p);
      assert.equal(new Set(readPages).size, readPages.length, "a page was read twice");
      assert.deepEqual(new Set(readPages), partialPages(records, 0), `seed ${seed}`);
      assert.equal(stats.bytesRead, readPages.length * PAGE_SIZE);

      // No page is written or cleared twice (writes merged, clears disjoint).
      const seen = new Set<number>();
      for (const [o, l] of [...target.writes, ...target.clears]) {
        for (let p = o / PAGE_SIZE; p < (o + l) / PAGE_SIZE; p++) {
          assert.ok(!seen.has(p), `page ${p} touched twice`);
          seen.add(p);
        }
      }
    }
  });

  it("applies the other disk independently", async () => {
    const diskSize = 1024 * 1024;
    const records = randomRecords(99, 300, diskSize);
    const base = Buffer.alloc(diskSize, 0xab);
    const target = new MemoryTarget(Buffer.from(base));
    await applyRecords(target, records, 1, diskSize);
    assert.equal(sha(target.image), sha(replay(base, records, 1)));
  });

  it("clears long aligned zero runs and reads only their edge pages", async () => {
    const diskSize = 64 * 1024 * 1024;
    const base = Buffer.alloc(diskSize, 7);
    const target = new MemoryTarget(Buffer.from(base));
    const records = [zero(1, 100, 40 * 1024 * 1024), data(2, 1000, Buffer.alloc(10, 1))];
    const stats = await applyRecords(target, records, 0, diskSize);
    assert.equal(sha(target.image), sha(replay(base, records, 0)));
    assert.deepEqual(target.reads, [[0, 512], [alignDown(100 + 40 * 1024 * 1024), 512]]);
    assert.ok(stats.bytesCleared > 39 * 1024 * 1024);
    assert.ok(stats.bytesWritten < 8192);
  });

  it("writes large data in chunks of at most 4 MiB and merges touching writes", async () => {
    const diskSize = 16 * 1024 * 1024;
    const target = new MemoryTarget(Buffer.alloc(diskSize));
    const records: WriteRecord[] = [];
    for (let i = 0; i < 2048; i++) records.push(data(i + 1, i * 4096, randomBytes(4096)));
    const stats = await applyRecords(target, records, 0, diskSize);
    assert.equal(stats.writeCalls, 2);
    assert.equal(stats.readCalls, 0);
    assert.equal(sha(target.image), sha(replay(Buffer.alloc(diskSize), records, 0)));
  });

  it("refuses writes outside the disk before touching the target", async () => {
    const target = new MemoryTarget(Buffer.alloc(4096));
    const records = [data(1, 0, Buffer.alloc(10, 1)), data(2, 4000, Buffer.alloc(200, 1))];
    await assert.rejects(applyRecords(target, records, 0, 4096), (e: Error) => e instanceof RangeError && /beyond its size 4096/.test(e.message));
    assert.equal(target.writes.length + target.reads.length, 0);
    await assert.rejects(applyRecords(target, [{ ...data(3, 0, Buffer.alloc(4)), length: 5 }], 0, 4096), RangeError);
  });

  it("copies any part of an extent made of several records' pieces", () => {
    const [ex] = coalesceWrites([data(1, 0, Buffer.from("abcd")), data(2, 4, Buffer.from("efg")), data(3, 7, Buffer.from("hijkl"))], 0);
    assert.equal(ex!.data!.length, 3, "three pieces, not joined");
    const whole = "abcdefghijkl";
    for (let from = 0; from <= whole.length; from++) {
      for (let to = from; to <= whole.length; to++) {
        const out = Buffer.alloc(to - from + 2, ".");
        copyExtent(ex!, out, 1, from, to);
        assert.equal(out.toString(), `.${whole.slice(from, to)}.`, `bytes [${from}, ${to})`);
      }
    }
  });

  it("coalesces to non-overlapping extents where later sequences win", () => {
    const ex = coalesceWrites(
      [data(3, 10, Buffer.from("cccc")), data(1, 0, Buffer.from("aaaaaaaaaaaaaaaaaaaa")), zero(2, 5, 10)],
      0,
    );
    assert.deepEqual(
      ex.map((e) => [e.offset, e.length, e.data ? Buffer.concat(e.data).toString() : null]),
      [
        [0, 5, "aaaaa"],
        [5, 5, null],
        [10, 4, "cccc"],
        [14, 1, null],
        [15, 5, "aaaaa"],
      ],
    );
  });
});

function alignDown(n: number) {
  return n - (n % PAGE_SIZE);
}
