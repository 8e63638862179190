import { describe, expect, test } from "vitest";
import { RateMeter } from "../common/metrics/index.js";

describe("RateMeter", () => {
  const t0 = 1_000_000_000;

  test("bytes per second over the window; old seconds drop out", () => {
    const m = new RateMeter(10);
    expect(m.perSecond(t0)).toBe(0);
    for (let s = 0; s < 10; s++) m.record(1000, t0 + s * 1000);
    // 10 000 bytes in the 9.5 s since the first.
    expect(m.perSecond(t0 + 9_500)).toBeCloseTo(10_000 / 9.5);
    // Nothing for 5 s: half the window is empty.
    expect(m.perSecond(t0 + 14_500)).toBe(500);
    expect(m.perSecond(t0 + 30_000)).toBe(0);
  });

  test("a young stream is measured over the time it has run, not the whole window", () => {
    const m = new RateMeter(10);
    m.record(4000, t0);
    m.record(4000, t0 + 1000);
    expect(m.perSecond(t0 + 2000)).toBe(4000);
  });

  test("recordTotal counts what a growing counter gained", () => {
    const m = new RateMeter(10);
    m.recordTotal(50_000, t0); // the starting total is not throughput
    m.recordTotal(52_000, t0 + 1000);
    m.recordTotal(54_000, t0 + 2000);
    expect(m.perSecond(t0 + 2000)).toBe(2000);
  });
});
