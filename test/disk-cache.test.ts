import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, readdir, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { describe } from "vitest";
import { payload } from "./support/cache-payload.js";
import { test as it } from "./support/fixtures.js";
import { sourceUrl, TS_CHILD_ARGS } from "./support/dist.js";
import { DiskCache, SequenceGapError } from "../process-server/cache/index.js";
import { encodeMachineDir } from "../process-server/cache/machine-dir.js";
import { encodeFrame } from "../process-server/cache/frame.js";
import { WriteKind, WriteRecord } from "../proto/index.js";
import { deserializeReplicateRequest, receivedEncoding, serializeReplicateRequest } from "../common/wire/index.js";

/** A record whose payload is derived from (machine, sequence), so any reader can verify it. */
function rec(machineId: string, seq: number): WriteRecord {
  const data = payload(machineId, seq);
  return { sequence: seq, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: seq * 512, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 1_000_000 + seq, readAtSequence: 0 };
}

function range(machineId: string, from: number, to: number): WriteRecord[] {
  const out: WriteRecord[] = [];
  for (let s = from; s <= to; s++) out.push(rec(machineId, s));
  return out;
}

async function readAll(cache: DiskCache, machineId: string, from: number): Promise<WriteRecord[]> {
  const out: WriteRecord[] = [];
  for (;;) {
    const batch = await cache.read(machineId, from + out.length, 64 * 1024);
    if (!batch.length) return out;
    out.push(...batch);
  }
}

function assertRecords(machineId: string, got: WriteRecord[], from: number, to: number): void {
  assert.equal(got.length, to - from + 1, `${machineId}: expected ${from}..${to}, got ${got.length} records`);
  got.forEach((r, i) => {
    assert.equal(r.sequence, from + i);
    assert.ok(Buffer.from(r.data).equals(payload(machineId, r.sequence)), `${machineId}/${r.sequence} payload`);
    assert.equal(r.capturedAtMs, 1_000_000 + r.sequence);
  });
}

async function logFiles(dir: string, machineId: string): Promise<string[]> {
  const d = join(dir, "machines", machineId);
  return (await readdir(d)).filter((n) => n.endsWith(".log")).map((n) => join(d, n)).sort();
}

describe("disk cache", () => {
  it("appends, reads, releases and survives reopen", async ({ tempDir }) => {
    const dir = tempDir();
    let cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    assert.equal(await cache.append("vm-a", range("vm-a", 1, 50)), 50);
    assert.equal(await cache.append("vm-b", range("vm-b", 1, 5)), 5);
    assert.deepEqual(cache.machines().sort(), ["vm-a", "vm-b"]);
    assertRecords("vm-a", await readAll(cache, "vm-a", 1), 1, 50);
    assertRecords("vm-a", await cache.read("vm-a", 10, 1), 10, 10); // at least one record
    assert.equal(cache.oldestPendingCapturedAtMs("vm-a"), 1_000_001);
    await cache.release("vm-a", 20);
    assert.equal(cache.oldestPendingCapturedAtMs("vm-a"), 1_000_021);
    await assert.rejects(cache.release("vm-a", 51), RangeError);
    await cache.close();
    await assert.rejects(cache.append("vm-a", range("vm-a", 51, 51)), /closed/);

    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    assert.equal(cache.lastSequence("vm-a"), 50);
    assert.equal(cache.releasedSequence("vm-a"), 20);
    assert.equal(cache.lastSequence("vm-b"), 5);
    assert.equal(cache.oldestPendingCapturedAtMs("vm-a"), 1_000_021);
    assertRecords("vm-a", await readAll(cache, "vm-a", 21), 21, 50);
    await cache.release("vm-a", 50);
    assert.equal(cache.oldestPendingCapturedAtMs("vm-a"), undefined);
    assert.equal(await cache.append("vm-a", range("vm-a", 51, 52)), 52);
    assert.equal(cache.oldestPendingCapturedAtMs("vm-a"), 1_000_051);
    assertRecords("vm-a", await readAll(cache, "vm-a", 51), 51, 52);
    assert.equal(cache.lastSequence("nobody"), 0);
    assert.deepEqual(await cache.read("nobody", 1, 100), []);
    await cache.close();
  });

  it("reads recent records from memory and older ones from the file, the same either way", async ({ tempDir }) => {
    const dir = tempDir();
    const payloadBytes = payload("t", 1).length;
    // A tail of about ten records: the first forty are read back from the file.
    let cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30, tailBytes: 10 * (payloadBytes + 64) });
    for (let s = 1; s <= 50; s += 7) await cache.append("t", range("t", s, Math.min(50, s + 6)));
    const fromBoth = await readAll(cache, "t", 1);
    assertRecords("t", fromBoth, 1, 50);
    // Reads that start inside the tail, at its edge and before it.
    for (const from of [49, 45, 41, 40, 30]) assertRecords("t", await readAll(cache, "t", from), from, 50);
    await cache.release("t", 44);
    assertRecords("t", await readAll(cache, "t", 45), 45, 50);
    assert.equal(cache.oldestPendingCapturedAtMs("t"), 1_000_045);
    // Records already handed out stay intact while more are appended and released.
    const held = await cache.read("t", 46, 1 << 20);
    await cache.append("t", range("t", 51, 80));
    await cache.release("t", 60);
    assertRecords("t", held, 46, 50);
    assertRecords("t", await readAll(cache, "t", 61), 61, 80);
    await cache.close();
    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    assertRecords("t", await readAll(cache, "t", 61), 61, 80);
    await cache.close();
  });

  it("writes received records from the bytes they arrived in: the same files as from records built here", async ({ tempDir }) => {
    const records = range("r", 1, 40);
    records[7] = { ...records[7]!, kind: WriteKind.WRITE_KIND_TAG, data: Buffer.alloc(0), length: 0, offset: 0, tagName: "app-consistent ✓", consistencyGroup: "cg" };
    records[9] = { ...records[9]!, kind: WriteKind.WRITE_KIND_ZERO, data: Buffer.alloc(0), length: 1 << 20 };
    const message = serializeReplicateRequest({ message: { $case: "batch", value: { records } } });
    const decoded = deserializeReplicateRequest(message);
    assert.equal(decoded.message?.$case, "batch");
    const received = decoded.message.value.records;
    assert.ok(received.every((r) => receivedEncoding(r) !== undefined), "decoded the fast way");
    const [a, b] = [tempDir(), tempDir()];
    for (const [dir, batch] of [[a, received], [b, records]] as const) {
      const cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
      await cache.append("r", batch.slice(0, 15));
      await cache.append("r", batch.slice(15));
      await cache.close();
    }
    const logs = (dir: string) => join(dir, "machines", encodeMachineDir("r"));
    const files = async (dir: string) => (await readdir(logs(dir))).filter((n) => n.endsWith(".log")).sort();
    const names = await files(a);
    assert.ok(names.length > 0);
    assert.deepEqual(names, await files(b));
    for (const n of names) assert.ok((await readFile(join(logs(a), n))).equals(await readFile(join(logs(b), n))), `${n} differs`);
    // And both are the documented frame format.
    const expected = Buffer.concat(records.map((r) => encodeFrame(r.sequence, r.capturedAtMs, WriteRecord.encode(r).finish())));
    assert.ok(Buffer.concat(await Promise.all(names.map((n) => readFile(join(logs(a), n))))).equals(expected), "frames as encodeFrame writes them");
    const cache = await DiskCache.open(a, { highWaterBytes: 1 << 30 });
    const back = await readAll(cache, "r", 1);
    assert.deepEqual(back.map((r) => ({ ...r, data: Buffer.from(r.data) })), records.map((r) => ({ ...r, data: Buffer.from(r.data) })));
    await cache.close();
  });

  it("skips retransmitted duplicates and rejects gaps without side effects", async ({ tempDir }) => {
    const cache = await DiskCache.open(tempDir(), { highWaterBytes: 1 << 30 });
    await cache.append("m", range("m", 1, 10));
    assert.equal(await cache.append("m", range("m", 5, 15)), 15);
    assert.equal(await cache.append("m", range("m", 1, 3)), 15);
    const gap = await cache.append("m", [rec("m", 16), rec("m", 18)]).catch((e) => e);
    assert.ok(gap instanceof SequenceGapError);
    assert.equal(gap.expected, 17);
    assert.equal(gap.got, 18);
    assert.match(gap.message, /expected sequence 17, got 18/);
    assert.equal(cache.lastSequence("m"), 15);
    await assert.rejects(cache.append("m", [rec("m", 20)]), /expected sequence 16, got 20/);
    await assert.rejects(cache.append("fresh", [rec("fresh", 7)]), /expected sequence 1, got 7/);
    assertRecords("m", await readAll(cache, "m", 1), 1, 15);
    await cache.setBaseSequence("fresh", 6);
    assert.equal(await cache.append("fresh", [rec("fresh", 7)]), 7);
    await cache.close();
  });

  it("recovers from a torn tail, keeping every complete record", async ({ tempDir }) => {
    const dir = tempDir();
    let cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    await cache.append("vm", range("vm", 1, 30));
    await cache.close();
    const [file] = await logFiles(dir, "vm");
    const { size } = await stat(file!);
    await truncate(file!, size - 10); // last frame cut mid-payload

    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    assert.equal(cache.lastSequence("vm"), 29);
    assertRecords("vm", await readAll(cache, "vm", 1), 1, 29);
    assert.equal(await cache.append("vm", range("vm", 30, 31)), 31);
    await cache.close();

    await appendFile(file!, Buffer.from([0x20, 0, 0, 0, 1, 2, 3])); // half a header of garbage
    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30 });
    assert.equal(cache.lastSequence("vm"), 31);
    assertRecords("vm", await readAll(cache, "vm", 1), 1, 31);
    assert.equal(await cache.append("vm", range("vm", 32, 32)), 32);
    assertRecords("vm", await readAll(cache, "vm", 1), 1, 32);
    await cache.close();
  });

  it("group-commits concurrent appends into few fsyncs", async ({ tempDir }) => {
    const cache = await DiskCache.open(tempDir(), { highWaterBytes: 1 << 30 });
    const pending: Promise<number>[] = [];
    for (let s = 1; s <= 200; s++) {
      pending.push(cache.append("x", [rec("x", s)]));
      pending.push(cache.append("y", [rec("y", s)]));
    }
    const acks = await Promise.all(pending);
    for (const [i, a] of acks.entries()) assert.ok(a >= Math.floor(i / 2) + 1);
    // One file per machine, one fsync each: all 400 appends were issued in the same tick.
    assert.equal(cache.stats().fsyncs, 2);
    assert.equal(cache.stats().appendedRecords, 400);
    // Appends arriving while a flush runs join the next one.
    const before = cache.stats().fsyncs;
    const wave: Promise<number>[] = [];
    for (let s = 201; s <= 260; s++) {
      wave.push(cache.append("x", [rec("x", s)]));
      if (s % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(wave);
    assert.ok(cache.stats().fsyncs - before <= 4, `fsyncs ${cache.stats().fsyncs - before}`);
    assertRecords("x", await readAll(cache, "x", 1), 1, 260);
    await cache.close();
  });

  it("rotates files and reclaims released space; releases persist", async ({ tempDir }) => {
    const dir = tempDir();
    let cache = await DiskCache.open(dir, { highWaterBytes: 600 * 1024, fileSizeBytes: 64 * 1024 });
    for (let s = 1; s <= 400; s += 20) await cache.append("r", range("r", s, s + 19));
    assert.ok((await logFiles(dir, "r")).length > 5);
    const full = cache.usedBytes();
    assert.ok(cache.isAboveHighWater());
    await cache.release("r", 300);
    assert.ok(cache.usedBytes() < full / 2, `${cache.usedBytes()} of ${full}`);
    assert.ok(!cache.isAboveHighWater());
    await assert.rejects(cache.read("r", 1, 100), /no longer cached/);
    assertRecords("r", await readAll(cache, "r", 301), 301, 400);
    await cache.close();

    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30, fileSizeBytes: 64 * 1024 });
    assert.equal(cache.releasedSequence("r"), 300);
    assertRecords("r", await readAll(cache, "r", 301), 301, 400);
    await cache.release("r", 400);
    assert.equal(cache.usedBytes(), 0);
    assert.deepEqual(await logFiles(dir, "r"), []);
    assert.equal(await cache.append("r", range("r", 401, 405)), 405);
    await cache.close();
    cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30, fileSizeBytes: 64 * 1024 });
    assert.equal(cache.lastSequence("r"), 405);
    assertRecords("r", await readAll(cache, "r", 401), 401, 405);
    await cache.close();
  });

  // The child compiles the sources through tsx before it starts: minutes on a busy machine.
  it("loses no acknowledged record when SIGKILLed mid-stream", { timeout: 240_000 }, async ({ tempDir }) => {
    const dir = tempDir();
    const cacheUrl = sourceUrl("process-server/cache/index.ts");
    const protoUrl = sourceUrl("proto/index.ts");
    // Child: appends random-sized batches to two machines, releases now and then, prints acks.
    const script = `
      import { createHash } from "node:crypto";
      import { DiskCache } from ${JSON.stringify(cacheUrl)};
      import { WriteKind } from ${JSON.stringify(protoUrl)};
      import { payload } from ${JSON.stringify(sourceUrl("test/support/cache-payload.ts"))};
      const cache = await DiskCache.open(process.argv[1], { highWaterBytes: 1 << 30, fileSizeBytes: 256 * 1024 });
      process.stdout.write("ready\\n");
      async function run(m) {
        let next = cache.lastSequence(m) + 1;
        for (;;) {
          const n = 1 + Math.floor(Math.random() * 8);
          const recs = [];
          for (let i = 0; i < n; i++, next++) {
            const data = payload(m, next);
            recs.push({ sequence: next, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 1000000 + next, readAtSequence: 0 });
          }
          const p = cache.append(m, recs).then((d) => process.stdout.write("ack " + m + " " + d + "\\n"));
          if (Math.random() < 0.5) await p;
          if (Math.random() < 0.05 && cache.lastSequence(m) > cache.releasedSequence(m) + 50) {
            await cache.release(m, cache.lastSequence(m) - 40);
          }
        }
      }
      run("m1"); run("m2");
    `;
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, [...TS_CHILD_ARGS, "-e", script, dir], { stdio: ["ignore", "pipe", "inherit"] });
      const acked = new Map<string, number>();
      let out = "";
      const exited = new Promise((r) => child.on("exit", r));
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          if (!timer && out.includes("ready")) timer = setTimeout(resolve, 150 + Math.random() * 300);
        });
        child.on("exit", () => resolve());
      });
      child.kill("SIGKILL");
      await exited;
      for (const line of out.split("\n")) {
        const m = /^ack (\S+) (\d+)$/.exec(line);
        if (m) acked.set(m[1]!, Math.max(acked.get(m[1]!) ?? 0, Number(m[2])));
      }
      assert.ok((acked.get("m1") ?? 0) > 0, `round ${round}: child acked nothing`);
      const cache = await DiskCache.open(dir, { highWaterBytes: 1 << 30, fileSizeBytes: 256 * 1024 });
      for (const [m, seq] of acked) {
        assert.ok(cache.lastSequence(m) >= seq, `round ${round} ${m}: acked ${seq}, recovered ${cache.lastSequence(m)}`);
        const from = cache.releasedSequence(m) + 1;
        assertRecords(m, await readAll(cache, m, from), from, cache.lastSequence(m));
        console.log(`round ${round} ${m}: acked ${seq}, recovered ${cache.lastSequence(m)}, released ${from - 1}`);
      }
      await cache.close();
    }
  });
});
