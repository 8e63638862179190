import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "vitest";
import { encodeWriteBatch, encodeWriteRecordAfter, serializeReplicateRequest } from "../common/wire/index.js";
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
  const records = Array.from({ length: 300 }, (_, i) => randomRecord(i));
  assert.deepEqual(encodeWriteBatch(records), Buffer.from(WriteBatch.encode({ records }).finish()));
  for (const r of records.slice(0, 50)) {
    const framed = encodeWriteRecordAfter(12, r);
    assert.deepEqual(framed.subarray(12), Buffer.from(WriteRecord.encode(r).finish()));
  }
  const request: ReplicateRequest = { message: { $case: "batch", value: { records: records.slice(0, 40) } } };
  assert.deepEqual(serializeReplicateRequest(request), Buffer.from(ReplicateRequest.encode(request).finish()));
  assert.equal(WriteBatch.decode(encodeWriteBatch(records)).records.length, records.length);
});
