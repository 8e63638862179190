import { afterEach, describe, expect, test, vi } from "vitest";
import {
  isPromise,
  KeyedMutex,
  Mutex,
  PollTimeoutError,
  pause,
  pollUntil,
  runLimited,
  Semaphore,
  SerialQueue,
  sleep,
  Wake,
  Watermark,
} from "../common/async/index.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("SerialQueue / Mutex", () => {
  test("sections run one at a time in queue order, and a failure rejects only its own", async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let inside = 0;
    const section = (name: string, fail = false) =>
      q.run(async () => {
        inside++;
        expect(inside).toBe(1);
        log.push(`start ${name}`);
        await tick();
        log.push(`end ${name}`);
        inside--;
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([section("a"), section("b", true), section("c")]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  test("idle waits for everything queued so far", async () => {
    const m = new Mutex();
    let done = 0;
    void m.run(async () => {
      await tick();
      done++;
    });
    void m.run(async () => {
      throw new Error("ignored by idle");
    }).catch(() => undefined);
    await m.idle();
    expect(done).toBe(1);
  });
});

describe("KeyedMutex", () => {
  test("serialises one key, lets different keys overlap", async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    let release!: () => void;
    const blocker = new Promise<void>((r) => {
      release = r;
    });
    const a1 = m.run("a", async () => {
      await blocker;
      order.push("a1");
    });
    const a2 = m.run("a", async () => {
      order.push("a2");
    });
    await m.run("b", async () => {
      order.push("b");
    });
    release();
    await Promise.all([a1, a2]);
    expect(order).toEqual(["b", "a1", "a2"]);
  });
});

describe("Semaphore", () => {
  test("at most `permits` holders, waiters served first come first served", async () => {
    const s = new Semaphore(2);
    expect(await s.acquire()).toBe(true);
    expect(await s.acquire()).toBe(true);
    expect(s.available).toBe(0);
    const granted: number[] = [];
    const w1 = s.acquire().then(() => granted.push(1));
    const w2 = s.acquire().then(() => granted.push(2));
    await tick();
    expect(granted).toEqual([]);
    s.release();
    await w1;
    s.release();
    await w2;
    expect(granted).toEqual([1, 2]);
  });

  test("an aborted waiter gets no permit and does not hold one up", async () => {
    const s = new Semaphore(1);
    await s.acquire();
    const ac = new AbortController();
    const aborted = s.acquire(ac.signal);
    const next = s.acquire();
    ac.abort();
    expect(await aborted).toBe(false);
    s.release();
    expect(await next).toBe(true);
    expect(s.available).toBe(0);
    s.release();
    expect(s.available).toBe(1);
    expect(() => s.release()).toThrow(/more often than acquired/);
  });

  test("refuses zero permits", () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});

describe("Wake", () => {
  test("wakes every waiter; a notify with nobody waiting is remembered once", async () => {
    const w = new Wake();
    let woken = 0;
    const a = w.wait().then(() => woken++);
    const b = w.wait().then(() => woken++);
    w.notify();
    await Promise.all([a, b]);
    expect(woken).toBe(2);

    w.notify();
    await w.wait(); // returns at once: the notify was remembered
    let late = false;
    void w.wait(undefined, 20).then(() => {
      late = true;
    });
    await tick();
    expect(late).toBe(false); // consumed: the next wait really waits (until its timeout)
    await sleep(40);
    expect(late).toBe(true);
  });

  test("abort ends a wait without rejecting", async () => {
    const w = new Wake();
    const ac = new AbortController();
    const waiting = w.wait(ac.signal);
    ac.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});

describe("Watermark", () => {
  test("waiters resolve when the position reaches them, abort rejects with the reason", async () => {
    const w = new Watermark(5);
    await w.waitFor(5);
    const reached: number[] = [];
    const at7 = w.waitFor(7).then(() => reached.push(7));
    const at9 = w.waitFor(9).then(() => reached.push(9));
    w.advance(8);
    await at7;
    expect(reached).toEqual([7]);
    w.advance(3); // never goes back
    expect(w.value).toBe(8);
    const ac = new AbortController();
    const stopped = w.waitFor(100, ac.signal);
    ac.abort(new Error("stopping"));
    await expect(stopped).rejects.toThrow("stopping");
    w.advance(9);
    await at9;
  });
});

describe("sleep and pause", () => {
  test("sleep rejects with the signal's reason, pause resolves false", async () => {
    const ac = new AbortController();
    const slept = sleep(10_000, ac.signal);
    const paused = pause(10_000, ac.signal);
    ac.abort(new Error("shutdown"));
    await expect(slept).rejects.toThrow("shutdown");
    await expect(paused).resolves.toBe(false);
    await expect(pause(1)).resolves.toBe(true);
    await expect(pause(0, ac.signal)).resolves.toBe(false);
  });

  describe("on a fake clock", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    test("sleep, pause and pollUntil wait exactly as long as the clock says, and no longer", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
      let woke = false;
      const slept = sleep(60_000).then(() => {
        woke = true;
      });
      await vi.advanceTimersByTimeAsync(59_999);
      expect(woke).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await slept;
      expect(woke).toBe(true);

      let probes = 0;
      const polled = pollUntil("the fifth probe", () => ++probes === 5 && probes, { intervalMs: 1_000 });
      await vi.advanceTimersByTimeAsync(3_999);
      expect(probes).toBe(4);
      await vi.advanceTimersByTimeAsync(1);
      await expect(polled).resolves.toBe(5);

      const ac = new AbortController();
      const paused = pause(3_600_000, ac.signal);
      await vi.advanceTimersByTimeAsync(1_000);
      ac.abort();
      await expect(paused).resolves.toBe(false);
      expect(vi.getTimerCount(), "an aborted wait leaves no timer behind").toBe(0);
    });
  });
});

describe("pollUntil", () => {
  test("returns the first value that is not undefined or false", async () => {
    let n = 0;
    const value = await pollUntil("the third probe", () => (++n === 3 ? { n } : undefined), { intervalMs: 1 });
    expect(value).toEqual({ n: 3 });
  });

  test("times out naming what it waited for; probe errors pass through", async () => {
    await expect(pollUntil("the moon", () => false, { timeoutMs: 30, intervalMs: 5 })).rejects.toThrow(PollTimeoutError);
    await expect(pollUntil("the moon", () => false, { timeoutMs: 30, intervalMs: 5 })).rejects.toThrow(/waiting for the moon/);
    await expect(
      pollUntil("a dead process", () => {
        throw new Error("it exited");
      }),
    ).rejects.toThrow("it exited");
  });

  test("stops on abort", async () => {
    const ac = new AbortController();
    const polling = pollUntil("never", () => undefined, { signal: ac.signal, intervalMs: 1_000 });
    ac.abort(new Error("cancelled"));
    await expect(polling).rejects.toThrow("cancelled");
  });
});

describe("runLimited", () => {
  test("never more than `limit` tasks in flight; the first failure is reported after the others settle", async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await runLimited([1, 2, 3, 4, 5, 6], 2, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick();
      seen.push(i);
      inFlight--;
    });
    expect(peak).toBe(2);
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6]);
    await expect(
      runLimited([1, 2, 3], 3, async (i) => {
        if (i === 2) throw new Error("task 2");
      }),
    ).rejects.toThrow("task 2");
  });
});

describe("isPromise", () => {
  test("tells promises from plain values", () => {
    expect(isPromise(Promise.resolve(1))).toBe(true);
    expect(isPromise(1)).toBe(false);
    expect(isPromise<Buffer | undefined>(undefined)).toBe(false);
    expect(isPromise(Buffer.alloc(1))).toBe(false);
  });
});
