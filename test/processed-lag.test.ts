import { describe, expect, test } from "vitest";
import { ProcessedLag } from "../process-server/processed-lag.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

function rec(sequence: number, capturedAtMs: number, bytes = 4096): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: 0,
    length: bytes,
    data: Buffer.alloc(bytes),
    tagName: "",
    consistencyGroup: "",
    capturedAtMs,
  };
}

const size = (r: WriteRecord) => r.data.length;

describe("processed lag", () => {
  test("is the age of the oldest uploaded write not yet applied, with the bytes behind it", () => {
    const lag = new ProcessedLag();
    lag.noteUploaded([rec(1, 1_000), rec(2, 1_500)], size);
    lag.noteUploaded([rec(3, 2_000, 8192)], size);
    expect(lag.measure(0, 3, 4_000)).toEqual({ lagSeconds: 3, unprocessedBytes: 16384 });
    // The first run applied: the oldest left is sequence 3's.
    expect(lag.measure(2, 3, 4_000)).toEqual({ lagSeconds: 2, unprocessedBytes: 8192 });
    expect(lag.measure(3, 3, 4_000)).toEqual({ lagSeconds: 0, unprocessedBytes: 0 });
  });

  test("after a restart (runs unknown) the lag counts from when it was last seen caught up", () => {
    const lag = new ProcessedLag();
    expect(lag.measure(5, 5, 10_000).lagSeconds).toBe(0);
    expect(lag.measure(5, 9, 13_000)).toEqual({ lagSeconds: 3, unprocessedBytes: 0 });
  });
});
