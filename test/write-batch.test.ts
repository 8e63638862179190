import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "vitest";
import { encodeWriteBatch, encodeWriteRecordAfter, encodeWriteRecordsAfter, serializeReplicateRequest } from "../common/wire/index.js";
import { ReplicateRequest, WriteBatch, WriteKind, WriteRecord } from "../proto/index.js";

function randomRecord(i: number): WriteRecord {
  const kind = [WriteKind.WRITE_KIND_DATA, WriteKind.WRITE_KIND_ZERO, WriteKind.WRITE_KIND_TAG][i % 3]!;
  const data = kind === WriteKind.WRITE_KIND_DATA ? randomBytes(i % 7 === 0 ? 0 : 1 + ((i * 977) % 70_000)) : Buffer.alloc(0);
  return {
    sequence: 2 ** 40 + i,
    kind,
    diskIndex: i % 3,
    offset: i * 4099 * 1_000_003,
    length: kind === WriteKind.WRITE_KIND_DATA ? data.length : i * 512,
    data,
    tagName: kind === WriteKind.WRITE_KIND_TAG ? `tag-${i}` : "",
    consistencyGroup: i % 6 === 2 ? "group" : "",
    capturedAtMs: 1_700_000_000_000 + i,
    readAtSequence: i % 4 === 1 ? 2 ** 40 + i + 17 : 0,
  };
}

// The hand-written encoders replace ts-proto's on the hot path: they must produce the same bytes.
test("one-copy encoders produce exactly the generated protobuf bytes", () => {
  const edge = (over: Partial<WriteRecord>): WriteRecord => ({ ...randomRecord(1), ...over });
  const records = [
    ...Array.from({ length: 300 }, (_, i) => randomRecord(i)),
    // Zero fields (left out), the largest exact numbers, one-byte varint boundaries, and a
    // negative time (int64: ten bytes, through the generated encoder).
    edge({ sequence: 0, kind: WriteKind.WRITE_KIND_UNSPECIFIED, diskIndex: 0, offset: 0, length: 0, data: Buffer.alloc(0), capturedAtMs: 0 }),
    edge({ sequence: Number.MAX_SAFE_INTEGER, offset: Number.MAX_SAFE_INTEGER - 511, capturedAtMs: Number.MAX_SAFE_INTEGER, readAtSequence: 2 ** 53 - 2 }),
    edge({ sequence: 127, diskIndex: 128, offset: 16_383, readAtSequence: 16_384 }),
    edge({ capturedAtMs: -5 }),
  ];
  assert.deepEqual(encodeWriteBatch(records), Buffer.from(WriteBatch.encode({ records }).finish()));
  for (const r of records.slice(0, 50)) {
    const framed = encodeWriteRecordAfter(12, r);
    assert.deepEqual(framed.subarray(12), Buffer.from(WriteRecord.encode(r).finish()));
  }
  // Many at once: views of one buffer, each exactly one record's frame room and bytes.
  const views = encodeWriteRecordsAfter(24, records);
  assert.equal(new Set(views.map((v) => v.buffer)).size, 1);
  for (const [i, v] of views.entries()) assert.deepEqual(v.subarray(24), Buffer.from(WriteRecord.encode(records[i]!).finish()));
  const request: ReplicateRequest = { message: { $case: "batch", value: { records: records.slice(0, 40) } } };
  assert.deepEqual(serializeReplicateRequest(request), Buffer.from(ReplicateRequest.encode(request).finish()));
  assert.equal(WriteBatch.decode(encodeWriteBatch(records)).records.length, records.length);
});
