import { randomBytes } from "node:crypto";
import { threadId } from "node:worker_threads";
import { describe, expect, test } from "vitest";
import { asBuffer, ownedBuffer, WorkerPool } from "../common/async/index.js";

const entry = new URL("./support/test-worker.js", import.meta.url);

describe("WorkerPool", () => {
  test("runs tasks on worker threads, moving buffers both ways", async () => {
    const pool = new WorkerPool({ entry, name: "test", size: 2 });
    try {
      const input = ownedBuffer(randomBytes(1 << 20));
      const expected = Buffer.from(input).reverse();
      const out = asBuffer(await pool.run<Uint8Array>({ op: "reverse", bytes: input }, [input.buffer]));
      expect(input.byteLength).toBe(0); // moved, not copied
      expect(out.equals(expected)).toBe(true);
      // Two long tasks at once take both workers, neither of them this thread.
      const ids = await Promise.all([pool.run<number>({ op: "thread", spinMs: 200 }), pool.run<number>({ op: "thread", spinMs: 200 })]);
      expect(new Set(ids).size).toBe(2);
      expect(ids).not.toContain(threadId);
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  test("queues beyond its size and serves in arrival order", async () => {
    const pool = new WorkerPool({ entry, name: "test", size: 1 });
    try {
      const order: number[] = [];
      await Promise.all([0, 1, 2, 3].map((i) => pool.run({ op: "thread", spinMs: 20 }).then(() => order.push(i))));
      expect(order).toEqual([0, 1, 2, 3]);
      expect(pool.started).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test("a task that throws fails alone, with its error class revived; the worker serves the next task", async () => {
    const pool = new WorkerPool({
      entry,
      name: "test",
      size: 1,
      reviveError: (name, message) => (name === "RangeError" ? new RangeError(message) : new Error(message)),
    });
    try {
      await expect(pool.run({ op: "throw", message: "bad input 7" })).rejects.toThrow(new RangeError("bad input 7"));
      const id = await pool.run<number>({ op: "thread", spinMs: 0 });
      expect(await pool.run<number>({ op: "thread", spinMs: 0 })).toBe(id);
      expect(pool.started).toBe(1);
    } finally {
      await pool.close();
    }
  });

  test("a worker that dies fails its task with a clear error and is replaced", async () => {
    const pool = new WorkerPool({ entry, name: "test", size: 1 });
    try {
      const before = await pool.run<number>({ op: "thread", spinMs: 0 });
      await expect(pool.run({ op: "exit" })).rejects.toThrow(/worker of pool "test" died while running a task: exit code 3/);
      const after = await pool.run<number>({ op: "thread", spinMs: 0 });
      expect(after).not.toBe(before);
    } finally {
      await pool.close();
    }
  });

  test("close lets running tasks finish, refuses queued and new ones", async () => {
    const pool = new WorkerPool({ entry, name: "test", size: 1 });
    await pool.run({ op: "thread", spinMs: 0 }); // started
    const running = pool.run<number>({ op: "thread", spinMs: 300 });
    const queued = pool.run({ op: "thread", spinMs: 0 });
    queued.catch(() => undefined);
    await pool.close();
    expect(typeof (await running)).toBe("number");
    await expect(queued).rejects.toThrow(/closed before the task ran/);
    await expect(pool.run({ op: "thread", spinMs: 0 })).rejects.toThrow(/is closed/);
    expect(pool.started).toBe(0);
  });

  test("refuses a size below one and a missing entry", () => {
    expect(() => new WorkerPool({ entry, name: "test", size: 0 })).toThrow(RangeError);
    expect(() => new WorkerPool({ entry: new URL("./support/nope.js", import.meta.url), name: "test" })).toThrow(/not found/);
  });

  test("ownedBuffer never hands out Node's shared slab", () => {
    const small = Buffer.from("tiny"); // lives in the shared pool
    const owned = ownedBuffer(small);
    expect(owned.buffer).not.toBe(small.buffer);
    expect(owned.byteLength).toBe(owned.buffer.byteLength);
    expect(owned.equals(small)).toBe(true);
    const big = Buffer.allocUnsafeSlow(64 * 1024);
    expect(ownedBuffer(big).buffer).toBe(big.buffer);
  });
});
