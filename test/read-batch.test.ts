import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { decodeWriteRecordView, deserializeReplicateRequest, encodeWriteBatch, serializeReplicateRequest } from "../common/wire/index.js";
import { ReplicateRequest, WriteKind, WriteRecord } from "../proto/index.js";

function record(i: number): WriteRecord {
  const kind = [WriteKind.WRITE_KIND_DATA, WriteKind.WRITE_KIND_ZERO, WriteKind.WRITE_KIND_TAG][i % 3]!;
  const data = kind === WriteKind.WRITE_KIND_DATA ? randomBytes(i % 7 === 0 ? 0 : 1 + ((i * 977) % 70_000)) : Buffer.alloc(0);
  return {
    sequence: i === 5 ? Number.MAX_SAFE_INTEGER : 2 ** 40 + i,
    kind,
    diskIndex: i % 3,
    offset: i * 4099 * 1_000_003,
    length: kind === WriteKind.WRITE_KIND_DATA ? data.length : i * 512,
    data,
    tagName: kind === WriteKind.WRITE_KIND_TAG ? `tag-${i}-ü` : "",
    consistencyGroup: i % 6 === 2 ? "group" : "",
    capturedAtMs: 1_700_000_000_000 + i,
    readAtSequence: i % 4 === 1 ? 2 ** 40 + i + 17 : 0,
  };
}

const plain = (r: WriteRecord) => ({ ...r, data: Buffer.from(r.data).toString("hex") });

describe("write records decoded as views", () => {
  test("a replicate batch decodes to what the generated decoder gives, payloads as views of the message", () => {
    const records = Array.from({ length: 200 }, (_, i) => record(i));
    const message = serializeReplicateRequest({ message: { $case: "batch", value: { records } } });
    const fast = deserializeReplicateRequest(message);
    const generated = ReplicateRequest.decode(message);
    expect(fast.message?.$case).toBe("batch");
    const got = fast.message?.$case === "batch" ? fast.message.value.records : [];
    const want = generated.message?.$case === "batch" ? generated.message.value.records : [];
    expect(got.map(plain)).toEqual(want.map(plain));
    const withData = got.find((r) => r.data.length > 0)!;
    expect(withData.data.buffer).toBe(message.buffer);
  });

  test("other messages and shapes the fast path does not know go to the generated decoder", () => {
    const open = ReplicateRequest.fromPartial({ message: { $case: "open", value: { machineId: "m" } } });
    const bytes = Buffer.from(ReplicateRequest.encode(open).finish());
    expect(deserializeReplicateRequest(bytes)).toEqual(ReplicateRequest.decode(bytes));
    // An unknown field (number 15, varint) inside a record, and a negative kind (10-byte varint).
    const r = record(1);
    const unknown = Buffer.concat([Buffer.from(WriteRecord.encode(r).finish()), Buffer.from([0x78, 0x01])]);
    expect(plain(decodeWriteRecordView(unknown))).toEqual(plain(WriteRecord.decode(unknown)));
    const negative = Buffer.from(WriteRecord.encode({ ...r, kind: -1 as WriteKind }).finish());
    expect(decodeWriteRecordView(negative).kind).toBe(-1);
    // Truncated input is refused as the generated decoder refuses it.
    const batch = encodeWriteBatch([record(3)]);
    const cut = Buffer.concat([Buffer.from([18]), Buffer.from([batch.length]), batch]).subarray(0, batch.length);
    expect(() => deserializeReplicateRequest(cut)).toThrow();
  });
});
