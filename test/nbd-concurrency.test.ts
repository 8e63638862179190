import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { NbdClient } from "../common/nbd/index.js";
import { Prng } from "../common/random/index.js";
import { type NbdExport, NbdServer } from "../mobility-agent/nbd/index.js";

const KiB = 1024;
const SIZE = 1024 * KiB;

/**
 * An asynchronous in-memory export whose operations take as long as `delayOf` says: disjoint
 * requests can overtake each other, so only the server's ordering keeps overlapping ones in line.
 */
class SlowExport implements NbdExport {
  readonly size = SIZE;
  readonly bytes = Buffer.alloc(SIZE);
  running = 0;
  maxRunning = 0;
  /** Writes in the order they reached the bytes. */
  readonly applied: number[] = [];
  delayOf: (offset: number) => number = () => 0;

  constructor(readonly name: string) {}

  private async slow<T>(offset: number, op: () => T): Promise<T> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await new Promise((r) => setTimeout(r, this.delayOf(offset)));
      return op();
    } finally {
      this.running--;
    }
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.slow(offset, () => Buffer.from(this.bytes.subarray(offset, offset + length)));
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.slow(offset, () => {
      data.copy(this.bytes, offset);
      this.applied.push(data[0]!);
    });
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.slow(offset, () => {
      this.bytes.fill(0, offset, offset + length);
    });
  }

  trim(): void {}

  flush(): Promise<void> {
    return this.slow(0, () => undefined);
  }
}

describe("NbdServer runs disjoint requests concurrently and overlapping ones in order", () => {
  let dir: string;
  let server: NbdServer;
  const slow = new SlowExport("slow");
  const socketPath = () => ({ socketPath: path.join(dir, "nbd.sock") });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "srlab-nbd-conc-"));
    server = new NbdServer({ exports: [slow], socketPath: path.join(dir, "nbd.sock"), tcp: false });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a fast request is answered before a slow disjoint one sent earlier", async () => {
    slow.delayOf = (offset) => (offset === 0 ? 200 : 0);
    slow.maxRunning = 0;
    const c = await NbdClient.connect(socketPath(), "slow");
    const order: string[] = [];
    const a = c.write(0, Buffer.alloc(4096, 1)).then(() => order.push("slow"));
    const b = c.write(512 * KiB, Buffer.alloc(4096, 2)).then(() => order.push("fast"));
    await Promise.all([a, b]);
    assert.deepEqual(order, ["fast", "slow"], "replies go out as each request finishes, matched by cookie");
    assert.equal(slow.maxRunning, 2, "both writes ran at once");
    await c.close();
  });

  test("a flush is answered only after every write sent before it", async () => {
    slow.delayOf = (offset) => (offset === 4096 ? 150 : 0);
    const c = await NbdClient.connect(socketPath(), "slow");
    const order: string[] = [];
    const w = c.write(4096, Buffer.alloc(4096, 3)).then(() => order.push("write"));
    const f = c.flush().then(() => order.push("flush"));
    await Promise.all([w, f]);
    assert.deepEqual(order, ["write", "flush"]);
    await c.close();
  });

  test("hundreds of pipelined overlapping writes, zeroes and reads with random delays: every read and the image follow arrival order", async () => {
    const rnd = new Prng("nbd-concurrency");
    slow.delayOf = () => rnd.int(4);
    slow.maxRunning = 0;
    slow.bytes.fill(0);
    const model = Buffer.alloc(SIZE);
    const c = await NbdClient.connect(socketPath(), "slow");
    const reads: Array<{ got: Promise<Buffer>; want: Buffer }> = [];
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      // A 64 KiB hot region makes overlaps frequent; the rest of the disk keeps disjoint ones going.
      const hot = rnd.int(4) !== 0;
      const offset = hot ? rnd.int(64 * KiB) : 64 * KiB + rnd.int(SIZE - 200 * KiB);
      const length = 1 + rnd.int(hot ? 16 * KiB : 64 * KiB);
      const kind = rnd.int(10);
      if (kind < 7) {
        const data = Buffer.alloc(length);
        rnd.fill(data);
        data[0] = i & 0xff;
        data.copy(model, offset);
        pending.push(c.write(offset, data));
      } else if (kind < 8) {
        model.fill(0, offset, offset + length);
        pending.push(c.writeZeroes(offset, length));
      } else {
        const got = c.read(offset, length);
        reads.push({ got, want: Buffer.from(model.subarray(offset, offset + length)) });
        pending.push(got);
      }
    }
    assert.ok(c.inFlight > 100, `requests were pipelined (${c.inFlight} in flight)`);
    await Promise.all(pending);
    await c.flush();
    assert.ok(slow.maxRunning > 1, `disjoint requests ran side by side (at most ${slow.maxRunning})`);
    for (const [k, r] of reads.entries()) assert.ok((await r.got).equals(r.want), `read ${k} saw exactly the writes sent before it`);
    assert.ok(slow.bytes.equals(model), "the image is what arrival order says");
    await c.close();
  });

  test("stopping the server lets requests in progress finish and answer first", async () => {
    slow.delayOf = () => 100;
    const c = await NbdClient.connect(socketPath(), "slow");
    const writes = [0, 1, 2].map((k) => c.write(k * 8192, Buffer.alloc(4096, 7 + k)));
    await new Promise((r) => setTimeout(r, 20));
    await server.stop();
    await Promise.all(writes);
    for (let k = 0; k < 3; k++) assert.equal(slow.bytes[k * 8192], 7 + k);
    await c.close().catch(() => undefined);
  });
});
