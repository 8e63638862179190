import { describe, expect, test } from "vitest";
import { Prng } from "../common/random/index.js";
import { type Access, OverlapTracker, type Ticket } from "../mobility-agent/nbd/index.js";

/** Tracks which tickets have started (ready settled or none) — as the NBD server sees them. */
function started(t: Ticket): boolean {
  return t.blockers === 0;
}

describe("OverlapTracker", () => {
  test("disjoint writes start at once, without a promise", () => {
    const o = new OverlapTracker();
    const a = o.enter(0, 4096, "write");
    const b = o.enter(4096, 4096, "write");
    expect(a.ready).toBeUndefined();
    expect(b.ready).toBeUndefined();
    expect(o.inFlight).toBe(2);
    o.leave(b);
    o.leave(a);
    expect(o.inFlight).toBe(0);
  });

  test("an overlapping write waits for the earlier one and starts when it leaves", async () => {
    const o = new OverlapTracker();
    const a = o.enter(0, 4096, "write");
    const b = o.enter(4095, 2, "write");
    expect(b.ready).toBeInstanceOf(Promise);
    let startedB = false;
    void b.ready!.then(() => (startedB = true));
    await Promise.resolve();
    expect(startedB).toBe(false);
    o.leave(a);
    await b.ready;
    expect(startedB).toBe(true);
  });

  test("reads share a range; a write waits for reads before it, and reads after it wait for the write", () => {
    const o = new OverlapTracker();
    const r1 = o.enter(0, 8192, "read");
    const r2 = o.enter(4096, 8192, "read");
    expect(r2.ready).toBeUndefined();
    const w = o.enter(6000, 10, "write");
    expect(w.blockers).toBe(2);
    const r3 = o.enter(6005, 1, "read");
    expect(r3.blockers).toBe(1);
    o.leave(r1);
    o.leave(r2);
    expect(started(w)).toBe(true);
    expect(started(r3)).toBe(false);
    o.leave(w);
    expect(started(r3)).toBe(true);
  });

  test("touching ranges do not overlap; zero-length requests conflict with nothing but a barrier", () => {
    const o = new OverlapTracker();
    o.enter(0, 512, "write");
    expect(o.enter(512, 512, "write").ready).toBeUndefined();
    expect(o.enter(100, 0, "write").ready).toBeUndefined();
  });

  test("a flush waits for every earlier write, not for reads or later writes", () => {
    const o = new OverlapTracker();
    const w1 = o.enter(0, 10, "write");
    o.enter(100, 10, "read");
    const w2 = o.enter(1 << 30, 10, "write");
    const f = o.enter(0, 0, "flush");
    expect(f.blockers).toBe(2);
    const later = o.enter(0, 10, "write");
    // Waits for w1 (overlap) only; the flush holds no range.
    expect(later.blockers).toBe(1);
    o.leave(w1);
    expect(started(later)).toBe(true);
    expect(started(f)).toBe(false);
    o.leave(w2);
    expect(started(f)).toBe(true);
  });

  test("waits follow overlaps, not arrival alone: C waits for B only when A and C are disjoint", () => {
    const o = new OverlapTracker();
    const a = o.enter(0, 100, "write");
    const b = o.enter(50, 100, "write");
    const c = o.enter(120, 100, "write");
    expect(b.blockers).toBe(1);
    expect(c.blockers).toBe(1);
    o.leave(a);
    expect(started(b)).toBe(true);
    expect(started(c)).toBe(false);
    o.leave(b);
    expect(started(c)).toBe(true);
  });

  test("settled resolves once everything entered before it has left; leaving twice is harmless", async () => {
    const o = new OverlapTracker();
    expect(o.settled()).toBeUndefined();
    const a = o.enter(0, 1, "read");
    const b = o.enter(5, 1, "write");
    let done = false;
    const s = o.settled()!.then(() => (done = true));
    o.leave(a);
    o.leave(a);
    await Promise.resolve();
    expect(done).toBe(false);
    o.leave(b);
    await s;
    expect(done).toBe(true);
    expect(o.inFlight).toBe(0);
  });

  test("random requests finishing in random order: conflicting requests never overlap in time and start in arrival order", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = new Prng(seed);
      const o = new OverlapTracker();
      interface Req {
        id: number;
        offset: number;
        end: number;
        access: Access;
        ticket: Ticket;
        running: boolean;
        done: boolean;
        startedAt: number;
      }
      const reqs: Req[] = [];
      const running = new Set<Req>();
      let clock = 0;
      /** Must `earlier` finish before `later` starts? */
      const conflict = (earlier: Req, later: Req) => {
        if (later.id < earlier.id) return conflict(later, earlier);
        if (later.access === "flush") return earlier.access === "write";
        if (earlier.access === "flush" || (earlier.access === "read" && later.access === "read")) return false;
        return earlier.offset < later.end && later.offset < earlier.end;
      };
      const begin = (r: Req) => {
        for (const other of running) {
          if (conflict(other, r)) throw new Error(`seed ${seed}: request ${r.id} started while conflicting ${other.id} runs`);
        }
        r.running = true;
        r.startedAt = ++clock;
        running.add(r);
      };
      for (let i = 0; i < 400; i++) {
        const kind = rnd.int(10);
        const access: Access = kind < 6 ? "write" : kind < 9 ? "read" : "flush";
        const offset = access === "flush" ? 0 : rnd.int(64) * 512;
        const length = access === "flush" ? 0 : (1 + rnd.int(16)) * 512;
        const ticket = o.enter(offset, length, access);
        const r: Req = { id: i, offset, end: offset + length, access, ticket, running: false, done: false, startedAt: 0 };
        reqs.push(r);
        if (ticket.ready) void ticket.ready.then(() => begin(r));
        else begin(r);
        // Finish a random running request now and then, as a real export would.
        while (running.size > 0 && rnd.int(3) === 0) {
          const list = [...running];
          const f = list[rnd.int(list.length)]!;
          running.delete(f);
          f.done = true;
          o.leave(f.ticket);
          await Promise.resolve();
        }
        await Promise.resolve();
      }
      while (running.size > 0 || reqs.some((r) => !r.done)) {
        const list = [...running];
        expect(list.length, `seed ${seed}: nothing runs but requests are unfinished (deadlock)`).toBeGreaterThan(0);
        const f = list[rnd.int(list.length)]!;
        running.delete(f);
        f.done = true;
        o.leave(f.ticket);
        for (let k = 0; k < 3; k++) await Promise.resolve();
      }
      // Conflicting pairs started in arrival order.
      const outOfOrder: string[] = [];
      for (let i = 0; i < reqs.length; i++) {
        for (let j = i + 1; j < reqs.length; j++) {
          if (conflict(reqs[i]!, reqs[j]!) && reqs[i]!.startedAt > reqs[j]!.startedAt) outOfOrder.push(`${i} after ${j}`);
        }
      }
      expect(outOfOrder, `seed ${seed}`).toEqual([]);
      expect(o.inFlight).toBe(0);
    }
  });
});
