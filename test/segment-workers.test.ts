import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, test } from "vitest";
import {
  CODEC_NAMES,
  closeSegmentWorkers,
  configureSegmentWorkers,
  decodeSegment,
  deriveSegmentKey,
  encodeSegment,
  readSegmentHeader,
  SegmentIntegrityError,
  segmentWorkers,
} from "../common/segment/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import { GOLDEN_SEGMENTS } from "./support/golden-segments.js";

function record(sequence: number, data: Buffer): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: sequence * 65536,
    length: data.length,
    data,
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: 1_700_000_000_000 + sequence,
    readAtSequence: 0,
  };
}

/** A mix like disk writes: random, text and zero pages, in records from 1 byte to 1 MiB. */
function mixedRecords(first: number): WriteRecord[] {
  const sizes = [1, 4096, 65536, 1 << 20, 300, 8192];
  return sizes.map((n, i) => {
    const kind = i % 3;
    const data = kind === 0 ? randomBytes(n) : kind === 1 ? Buffer.from("the quick brown fox ".repeat(Math.ceil(n / 20))).subarray(0, n) : Buffer.alloc(n);
    return record(first + i, data);
  });
}

const key = deriveSegmentKey("deployment-secret", "k1");
const keys = (id: string) => (id === "k1" ? key : undefined);

afterAll(() => closeSegmentWorkers());

describe("segment workers", () => {
  test("every codec round-trips byte-exact through the pool, and the header names the codec", async () => {
    const records = mixedRecords(500);
    const segments = await Promise.all(CODEC_NAMES.map((codec) => encodeSegment(records, { machineId: "vm-1", key, keyId: "k1", codec })));
    for (const [i, codec] of CODEC_NAMES.entries()) {
      expect(readSegmentHeader(segments[i]!).codec).toBe(codec);
      const { records: out } = await decodeSegment(segments[i]!, keys, { machineId: "vm-1", firstSequence: 500 });
      expect(out.map((r) => r.sequence)).toEqual(records.map((r) => r.sequence));
      for (const [j, r] of out.entries()) expect(Buffer.compare(Buffer.from(r.data), records[j]!.data), `${codec} record ${j}`).toBe(0);
    }
    expect(segmentWorkers().started).toBeGreaterThanOrEqual(1);
    expect(segmentWorkers().started).toBeLessThanOrEqual(segmentWorkers().size);
  });

  test("the caller keeps its buffers: records and segment stay usable after the call", async () => {
    const records = mixedRecords(1);
    const copies = records.map((r) => Buffer.from(r.data));
    const seg = await encodeSegment(records, { machineId: "vm-1", key, keyId: "k1" });
    const before = Buffer.from(seg);
    await decodeSegment(seg, keys);
    expect(seg.equals(before)).toBe(true);
    for (const [i, r] of records.entries()) expect(Buffer.from(r.data).equals(copies[i]!)).toBe(true);
  });

  test("segments written before the pool (every codec) decode byte-exact", async () => {
    const goldenKey = deriveSegmentKey("golden-secret", "k7");
    for (const [codec, b64] of Object.entries(GOLDEN_SEGMENTS)) {
      const { header, records } = await decodeSegment(Buffer.from(b64, "base64"), (id) => (id === "k7" ? goldenKey : undefined), {
        machineId: "vm-golden",
        firstSequence: 101,
      });
      expect(header.codec).toBe(codec);
      expect(records.map((r) => Buffer.from(r.data).toString("utf8"))).toEqual([1, 2, 3].map((i) => `record ${i} `.repeat(20 * i)));
    }
  });

  test("a corrupt segment gives one clear integrity error and the pool keeps serving", async () => {
    const records = mixedRecords(10);
    const seg = await encodeSegment(records, { machineId: "vm-1", key, keyId: "k1", codec: "lz4" });
    const started = segmentWorkers().started;
    const bad = Buffer.from(seg);
    bad[bad.length - 40]! ^= 0x01; // inside the ciphertext
    const err = await decodeSegment(bad, keys, { machineId: "vm-1", firstSequence: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SegmentIntegrityError);
    expect((err as Error).message).toBe("segment of machine vm-1 at sequence 10 failed authentication (wrong key, or header or data altered)");
    // A segment in the wrong place is refused by the worker's checks, with the class intact.
    await expect(decodeSegment(seg, keys, { firstSequence: 11 })).rejects.toThrow(new SegmentIntegrityError("segment starts at sequence 10, expected 11"));
    const { records: out } = await decodeSegment(seg, keys);
    expect(out).toHaveLength(records.length);
    expect(segmentWorkers().started).toBe(started);
  });

  test("the pool size is an option; closing ends the workers and a later use starts a new pool", async () => {
    configureSegmentWorkers(1);
    const records = mixedRecords(1);
    await Promise.all([1, 2, 3].map(() => encodeSegment(records, { machineId: "vm-1", key, keyId: "k1" })));
    expect(segmentWorkers().size).toBe(1);
    expect(segmentWorkers().started).toBe(1);
    const pool = segmentWorkers();
    await closeSegmentWorkers();
    await expect(pool.run({})).rejects.toThrow(/closed/);
    const seg = await encodeSegment(records, { machineId: "vm-1", key, keyId: "k1" });
    expect((await decodeSegment(seg, keys)).records).toHaveLength(records.length);
    expect(() => configureSegmentWorkers(0)).toThrow(RangeError);
    configureSegmentWorkers(undefined);
  });
});
