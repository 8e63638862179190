import { describe, expect, test } from "vitest";
import { type CpuProfile, formatSummary, selfTimes, shortUrl } from "../bench/profile-summary.js";

// Two functions in one file of the project, a dependency and the idle pseudo-frame.
const profile: CpuProfile = {
  startTime: 0,
  nodes: [
    { id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: -1 } },
    { id: 2, callFrame: { functionName: "encode", url: "file:///x/dist/common/wire/write-batch.js", lineNumber: 9 } },
    { id: 3, callFrame: { functionName: "decode", url: "file:///x/dist/common/wire/write-batch.js", lineNumber: 19 } },
    { id: 4, callFrame: { functionName: "write", url: "file:///x/node_modules/@grpc/grpc-js/build/src/stream.js", lineNumber: 0 } },
    { id: 5, callFrame: { functionName: "(idle)", url: "", lineNumber: -1 } },
  ],
  samples: [2, 3, 2, 4, 5, 2],
  timeDeltas: [100, 200, 100, 400, 1000, 100],
};

describe("profile summary", () => {
  test("sums self time per function, file and package, idle apart", () => {
    expect(selfTimes([profile], "function").get("encode common/wire/write-batch.js:10")).toBe(300);
    expect(selfTimes([profile], "file").get("common/wire/write-batch.js")).toBe(500);
    const byPackage = selfTimes([profile], "package");
    expect(byPackage.get("common")).toBe(500);
    expect(byPackage.get("@grpc/grpc-js")).toBe(400);
    const lines = formatSummary(byPackage, 5);
    expect(lines[0]).toBe("busy 0.00 s (idle 0.00 s)");
    expect(lines[1]).toMatch(/55\.6%.*common$/);
    expect(shortUrl("")).toBe("(native)");
  });

  test("a window counts only the samples inside it", () => {
    // Sample times: 100, 300, 400, 800, 1800, 1900 µs.
    const t = selfTimes([profile], "function", { from: 0.00025, to: 0.001 });
    expect([...t.values()].reduce((a, b) => a + b, 0)).toBe(200 + 100 + 400);
  });
});
