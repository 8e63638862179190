import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "vitest";
import {
  CODEC_NAMES,
  compressPayload,
  DEFAULT_CODEC,
  decodeSegment,
  decompressPayload,
  deriveSegmentKey,
  encodeSegment,
  readSegmentHeader,
  SegmentIntegrityError,
} from "../common/segment/index.js";
import { parseSegmentObjectName, segmentObjectName } from "../common/storage-layout/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

function rec(sequence: number, over: Partial<WriteRecord> = {}): WriteRecord {
  const data = over.data ?? Buffer.concat([randomBytes(300), Buffer.from("hello world ".repeat(100)), Buffer.alloc(2000)]);
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: sequence % 2,
    offset: sequence * 4096 + 7,
    length: data.length,
    data,
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: 1_700_000_000_000 + sequence,
    readAtSequence: 0,
    ...over,
  };
}

function sampleRecords(first: number, n: number): WriteRecord[] {
  const out: WriteRecord[] = [];
  for (let i = 0; i < n; i++) out.push(rec(first + i));
  out.push(rec(first + n, { kind: WriteKind.WRITE_KIND_ZERO, data: Buffer.alloc(0), length: 1 << 20 }));
  out.push(rec(first + n + 1, { kind: WriteKind.WRITE_KIND_TAG, data: Buffer.alloc(0), length: 0, tagName: "app-1", consistencyGroup: "grp" }));
  return out;
}

const key = deriveSegmentKey("deployment-secret", "k1");
const keys = (id: string) => (id === "k1" ? key : undefined);

describe("segment", () => {
  it("round-trips with every codec", async () => {
    const records = sampleRecords(41, 20);
    for (const codec of CODEC_NAMES) {
      const seg = await encodeSegment(records, { machineId: "vm-1", key, keyId: "k1", codec });
      const { header, records: out } = await decodeSegment(seg, keys, { machineId: "vm-1", firstSequence: 41 });
      assert.equal(header.codec, codec);
      assert.equal(header.firstSequence, 41);
      assert.equal(header.lastSequence, 41 + records.length - 1);
      assert.equal(header.recordCount, records.length);
      assert.equal(out.length, records.length);
      for (let i = 0; i < records.length; i++) {
        assert.deepEqual({ ...out[i], data: Buffer.from(out[i]!.data) }, { ...records[i], data: Buffer.from(records[i]!.data) });
      }
      if (codec !== "none") assert.ok(seg.length < header.rawLength, `${codec} should compress`);
    }
  });

  it("defaults to the measured codec", async () => {
    const seg = await encodeSegment(sampleRecords(1, 2), { machineId: "vm-1", key, keyId: "k1" });
    assert.equal(readSegmentHeader(seg).codec, DEFAULT_CODEC);
  });

  it("rejects any altered header or ciphertext byte", async () => {
    const seg = await encodeSegment(sampleRecords(1, 3), { machineId: "vm-1", key, keyId: "k1", codec: "deflate-1" });
    const { headerLength } = readSegmentHeader(seg);
    const positions = new Set<number>();
    for (let i = 0; i < headerLength; i++) positions.add(i); // every header byte
    for (let i = 0; i < 200; i++) positions.add(headerLength + Math.floor(Math.random() * (seg.length - headerLength)));
    positions.add(seg.length - 1); // tag
    for (const p of positions) {
      const bad = Buffer.from(seg);
      bad[p] = bad[p]! ^ 0x01;
      await assert.rejects(decodeSegment(bad, keys), SegmentIntegrityError, `flip at ${p} (header ${headerLength})`);
    }
    await assert.rejects(decodeSegment(seg.subarray(0, seg.length - 1), keys), SegmentIntegrityError);
    await assert.rejects(decodeSegment(seg.subarray(0, 10), keys), SegmentIntegrityError);
  });

  it("authenticates before believing the header: a damaged field reads as an integrity failure", async () => {
    const seg = await encodeSegment(sampleRecords(1, 3), { machineId: "vm-1", key, keyId: "k1" });
    const h = readSegmentHeader(seg);
    const firstAt = h.headerLength - 12 - 8 - 8 - 4 - 8 - 8;
    for (const [at, value] of [
      [firstAt, 0xff], // first sequence beyond 2^53
      [firstAt + 8, 0xff], // last sequence
      [7, 0x7f], // codec id
      [6, 0x09], // version
      [h.headerLength - 12 - 8 - 8, 0xff], // raw length
    ] as const) {
      const bad = Buffer.from(seg);
      bad[at] = value;
      await assert.rejects(decodeSegment(bad, keys), (err: Error) => {
        assert.ok(err instanceof SegmentIntegrityError);
        assert.match(err.message, /failed authentication|integrity/, `byte ${at}: ${err.message}`);
        assert.doesNotMatch(err.message, /out of range|unsupported|unknown segment codec/);
        return true;
      });
    }
    // A length field that points past the end is damage, named as such.
    const cut = Buffer.from(seg.subarray(0, 12));
    cut.writeUInt16BE(0xffff, 8);
    await assert.rejects(decodeSegment(cut, keys), /integrity check: header damaged or truncated \(key id\)/);
  });

  it("rejects bad magic, wrong and unknown keys with clear messages", async () => {
    const seg = await encodeSegment(sampleRecords(1, 3), { machineId: "vm-1", key, keyId: "k1" });
    const bad = Buffer.from(seg);
    bad.write("XXSEG1", 0);
    await assert.rejects(decodeSegment(bad, keys), /bad magic/);
    await assert.rejects(decodeSegment(seg, () => undefined), /unknown key id "k1"/);
    await assert.rejects(decodeSegment(seg, () => deriveSegmentKey("other-secret", "k1")), /failed authentication/);
    await assert.rejects(decodeSegment(seg, keys, { machineId: "vm-2" }), /belongs to machine "vm-1"/);
    await assert.rejects(decodeSegment(seg, keys, { firstSequence: 2 }), /starts at sequence 1, expected 2/);
  });

  it("cannot be moved to another machine or position by rewriting the header", async () => {
    const seg = await encodeSegment(sampleRecords(100, 3), { machineId: "vm-1", key, keyId: "k1" });
    const h = readSegmentHeader(seg);
    // Rebuild the header with a same-length machine id: only the AAD binding catches this.
    const swapped = Buffer.from(seg);
    const idAt = swapped.indexOf(Buffer.from("vm-1"));
    swapped.write("vm-2", idAt);
    assert.equal(readSegmentHeader(swapped).machineId, "vm-2");
    await assert.rejects(decodeSegment(swapped, keys, { machineId: "vm-2" }), /failed authentication/);
    const moved = Buffer.from(seg);
    const seqAt = h.headerLength - 12 - 8 - 8 - 4 - 8 - 8; // nonce, created, raw, count, last, first
    moved.writeBigUInt64BE(200n, seqAt);
    moved.writeBigUInt64BE(BigInt(200 + h.recordCount - 1), seqAt + 8);
    assert.equal(readSegmentHeader(moved).firstSequence, 200);
    await assert.rejects(decodeSegment(moved, keys), /failed authentication/);
  });

  it("refuses non-contiguous or empty record runs", async () => {
    await assert.rejects(encodeSegment([], { machineId: "m", key, keyId: "k1" }), RangeError);
    await assert.rejects(encodeSegment([rec(1), rec(3)], { machineId: "m", key, keyId: "k1" }), /contiguous/);
  });

  it("derives distinct, stable keys", () => {
    assert.equal(key.length, 32);
    assert.deepEqual(deriveSegmentKey("deployment-secret", "k1"), key);
    assert.notDeepEqual(deriveSegmentKey("deployment-secret", "k2"), key);
    assert.notDeepEqual(deriveSegmentKey(Buffer.from("other"), "k1"), key);
  });

  it("names segments so they sort by sequence", () => {
    const n = segmentObjectName("vm-1", 5, 1234);
    assert.equal(n, "machines/vm-1/log/00000000000000000005-00000000000000001234.seg");
    assert.deepEqual(parseSegmentObjectName(n), { machineId: "vm-1", firstSequence: 5, lastSequence: 1234 });
    assert.equal(parseSegmentObjectName("machines/vm-1/replica/disk0"), undefined);
    assert.ok(segmentObjectName("m", 9, 10) < segmentObjectName("m", 10, 11));
    assert.throws(() => segmentObjectName("a/b", 1, 2), RangeError);
  });

  it("the raw payload calls (threadpool) round-trip every codec and refuse a wrong length", async () => {
    const raw = Buffer.concat([randomBytes(5000), Buffer.from("hello world ".repeat(2000)), Buffer.alloc(40_000)]);
    for (const codec of CODEC_NAMES) {
      const packed = await compressPayload(codec, raw);
      assert.deepEqual(await decompressPayload(codec, packed, raw.length), raw, codec);
      await assert.rejects(decompressPayload(codec, packed, raw.length - 1), SegmentIntegrityError, codec);
    }
  });
});
