import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "vitest";
import { deflateSync } from "node:zlib";
import { parseDuration, parseRate, parseSize } from "../common/units/index.js";
import {
  runWorkload,
  WORKLOAD_PROFILES,
  WorkloadGenerator,
  type WorkloadSpec,
  type WorkloadTarget,
} from "../mobility-agent/workload/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** In-memory target that hashes every write and remembers where it went. */
class RecordingTarget implements WorkloadTarget {
  readonly writes: { offset: number; length: number }[] = [];
  flushes = 0;
  private readonly hash = createHash("sha256");
  constructor(readonly size: number) {}
  write(offset: number, data: Buffer): void {
    this.writes.push({ offset, length: data.length });
    this.hash.update(`${offset}:${data.length}:`).update(data);
  }
  flush(): void {
    this.flushes++;
  }
  private done: string | undefined;
  digest(): string {
    this.done ??= this.hash.digest("hex");
    return this.done;
  }
}

describe("workload generator", () => {
  test("same seed → same writes; different seed → different writes", async () => {
    const size = 64 * MiB;
    for (const profile of WORKLOAD_PROFILES) {
      const spec: WorkloadSpec = { profile, seed: "lab-42", maxWrites: 200 };
      const a = new RecordingTarget(size);
      const b = new RecordingTarget(size);
      const c = new RecordingTarget(size);
      const ra = await runWorkload(a, spec, { digest: true });
      const rb = await runWorkload(b, spec, { digest: true });
      await runWorkload(c, { ...spec, seed: "lab-43" });
      assert.equal(a.digest(), b.digest(), profile);
      assert.equal(ra.digest, rb.digest, profile);
      assert.notEqual(a.digest(), c.digest(), profile);
      assert.equal(ra.writes, 200);
    }
  });

  test("every profile writes only inside the disk (and inside its region)", async () => {
    const size = 10 * MiB + 1234; // not a multiple of any block size
    const region = { offset: 3 * MiB + 512, length: 2 * MiB + 77 };
    for (const profile of WORKLOAD_PROFILES) {
      for (const r of [undefined, region]) {
        const t = new RecordingTarget(size);
        await runWorkload(t, { profile, seed: 7, maxWrites: 1000, region: r, blockSize: profile === "sequential" ? 256 * KiB : undefined });
        const lo = r?.offset ?? 0;
        const hi = r ? r.offset + r.length : size;
        for (const w of t.writes) {
          assert.ok(w.length > 0 && w.offset >= lo && w.offset + w.length <= hi, `${profile} wrote ${w.offset}+${w.length} outside [${lo}, ${hi})`);
        }
      }
    }
    assert.throws(() => new WorkloadGenerator({ profile: "random", region: { offset: size - 10, length: 20 } }, size), RangeError);
  });

  test("profiles have their shape", async () => {
    const size = 64 * MiB;
    const seq = new RecordingTarget(size);
    await runWorkload(seq, { profile: "sequential", blockSize: 64 * KiB, maxWrites: 50 });
    assert.deepEqual(seq.writes.map((w) => w.offset), seq.writes.map((_, i) => i * 64 * KiB));

    const rnd = new RecordingTarget(size);
    await runWorkload(rnd, { profile: "random", maxWrites: 2000 });
    const sizes = new Set(rnd.writes.map((w) => w.length));
    assert.ok(sizes.has(4 * KiB) && sizes.has(MiB), [...sizes].join());
    assert.ok(rnd.writes.every((w) => w.offset % (4 * KiB) === 0));

    // Zipf: a handful of blocks take a large share of the writes.
    const zipf = new RecordingTarget(size);
    await runWorkload(zipf, { profile: "zipf", maxWrites: 20000 });
    const counts = new Map<number, number>();
    for (const w of zipf.writes) counts.set(w.offset, (counts.get(w.offset) ?? 0) + 1);
    const top = [...counts.values()].sort((x, y) => y - x);
    const top1pct = top.slice(0, Math.ceil((size / (4 * KiB)) * 0.01)).reduce((s, n) => s + n, 0);
    assert.ok(top1pct > 20000 * 0.4, `top 1% of blocks got ${top1pct} of 20000 writes`);

    // Append-log: flush every N writes, plus the final flush.
    const log = new RecordingTarget(size);
    const r = await runWorkload(log, { profile: "append-log", flushEvery: 4, maxWrites: 20 });
    // Flushes after writes 4, 8, 12, 16; the one due after write 20 is the final flush.
    assert.equal(log.flushes, 5);
    assert.equal(r.flushes, 5);
    assert.deepEqual(log.writes.map((w) => w.offset), log.writes.map((_, i) => i * 4 * KiB));
  });

  test("without limits it makes one pass over the disk", async () => {
    const t = new RecordingTarget(3 * MiB + 100);
    const r = await runWorkload(t, { profile: "sequential", blockSize: MiB });
    assert.equal(r.bytes, 3 * MiB + 100);
    assert.deepEqual(t.writes.at(-1), { offset: 3 * MiB, length: 100 });
  });

  test("data is compressible-ish, and every write differs", () => {
    const gen = new WorkloadGenerator({ profile: "sequential", blockSize: 256 * KiB }, 64 * MiB);
    const a = gen.next();
    const b = gen.next();
    assert.ok(a.kind === "write" && b.kind === "write");
    const ratio = deflateSync(a.data).length / a.data.length;
    assert.ok(ratio > 0.3 && ratio < 0.75, `deflate ratio ${ratio}`);
    assert.notDeepEqual(a.data, b.data);
  });

  test("byte-rate limit is respected (not wildly faster)", async () => {
    const t = new RecordingTarget(64 * MiB);
    const rate = 2_000_000;
    const bytes = MiB;
    const r = await runWorkload(t, { profile: "sequential", blockSize: 64 * KiB, rateBytesPerSec: rate, maxBytes: bytes });
    const expected = bytes / rate;
    assert.ok(r.seconds >= 0.5 * expected, `took ${r.seconds}s, expected about ${expected}s`);
    assert.ok(r.seconds < 10 * expected + 1, `took ${r.seconds}s, far slower than ${expected}s`);
  });

  test("IOPS limit is respected", async () => {
    const t = new RecordingTarget(64 * MiB);
    const r = await runWorkload(t, { profile: "random", iops: 200, maxWrites: 60 });
    assert.equal(r.writes, 60);
    assert.ok(r.seconds >= 0.5 * (60 / 200), `took ${r.seconds}s`);
  });

  test("duration stops the run; abort signal stops it early", async () => {
    const t = new RecordingTarget(64 * MiB);
    const r = await runWorkload(t, { profile: "zipf", durationMs: 300, rateBytesPerSec: 1_000_000 });
    assert.ok(r.seconds >= 0.25 && r.seconds < 5, `ran ${r.seconds}s`);
    assert.equal(r.aborted, false);
    assert.ok(r.bytes <= 1_000_000 * 0.1 + 1_000_000 * r.seconds + 4 * KiB);

    // Abort once progress has been reported (not after a fixed delay, which a busy machine can outrun).
    const ac = new AbortController();
    const progress: number[] = [];
    const r2 = await runWorkload(new RecordingTarget(64 * MiB), { profile: "random", durationMs: 60_000, iops: 100 }, {
      signal: ac.signal,
      onProgress: (p) => {
        progress.push(p.writes);
        ac.abort();
      },
      progressIntervalMs: 50,
    });
    assert.equal(r2.aborted, true);
    assert.ok(r2.seconds < 5);
    assert.ok(progress.length >= 1);
  });

  test("queue depth > 1 keeps several writes in flight; errors propagate", async () => {
    let inFlight = 0;
    let peak = 0;
    const target: WorkloadTarget = {
      size: 16 * MiB,
      async write() {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
      },
      flush() {},
    };
    const r = await runWorkload(target, { profile: "random", queueDepth: 8, maxWrites: 100 });
    assert.equal(r.writes, 100);
    assert.equal(peak, 8);
    const failing: WorkloadTarget = { size: MiB, write: () => Promise.reject(new Error("boom")), flush() {} };
    await assert.rejects(runWorkload(failing, { profile: "sequential", maxWrites: 10 }), /boom/);
  });

  test("a write's bytes stay as generated until the target is done with them", async () => {
    // The target copies each write's data only as it completes, as an async disk or an NBD client
    // would read it; buffers reused too early would show later writes' bytes.
    const completed: string[] = [];
    const target: WorkloadTarget = {
      size: 64 * MiB,
      async write(offset, data) {
        await new Promise((r) => setTimeout(r, 1 + (offset % 3)));
        completed.push(`${offset}:${createHash("sha256").update(data).digest("hex")}`);
      },
      flush() {},
    };
    await runWorkload(target, { profile: "random", queueDepth: 8, maxWrites: 300, seed: 5 });
    const replay = new WorkloadGenerator({ profile: "random", seed: 5 }, 64 * MiB);
    const generated: string[] = [];
    while (generated.length < 300) {
      const op = replay.next();
      if (op.kind === "write") generated.push(`${op.offset}:${createHash("sha256").update(op.data).digest("hex")}`);
    }
    // Completion order is not issue order: compare as multisets.
    assert.deepEqual(completed.sort(), generated.sort());
  });

  test("unit parsers", () => {
    assert.equal(parseSize("4096"), 4096);
    assert.equal(parseSize("4k"), 4096);
    assert.equal(parseSize("512M"), 512 * MiB);
    assert.equal(parseSize("1GiB"), 1024 * MiB);
    assert.equal(parseSize("1.5 GiB"), 1536 * MiB);
    assert.equal(parseSize("20MB"), 20_000_000);
    assert.equal(parseSize("7B"), 7);
    assert.throws(() => parseSize("lots"), RangeError);
    assert.throws(() => parseSize("-1k"), RangeError);
    assert.equal(parseRate("20MB/s"), 20_000_000);
    assert.equal(parseRate("20MiB/s"), 20 * MiB);
    assert.equal(parseRate("512KBps"), 512_000);
    assert.equal(parseRate("1M"), MiB);
    assert.throws(() => parseRate("/s"), RangeError);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("30s"), 30_000);
    assert.equal(parseDuration("2m"), 120_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("2"), 2000);
    assert.throws(() => parseDuration("soon"), RangeError);
    assert.throws(() => parseDuration("5x"), RangeError);
  });
});
