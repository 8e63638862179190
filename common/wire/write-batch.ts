import { ReplicateRequest, WriteRecord } from "../../proto/index.js";

// Protobuf encoding of write batches without the generic writer's copies. The generated encoder
// copies every payload into a doubling buffer, shifts each record on join() and copies the result
// again on finish(); for multi-MiB batches that (and the garbage it makes) dominated the CPU
// profile. Here the small fields still go through the generated code, and each payload is copied
// exactly once into one buffer of the final size. The bytes are identical to
// WriteBatch.encode(...).finish() (same fields, same order), so either decoder reads them.

const EMPTY = Buffer.alloc(0);
/** WriteBatch.records (field 1) and ReplicateRequest.batch (field 2), length-delimited. */
const BATCH_RECORDS_TAG = 10;
const REQUEST_BATCH_TAG = 18;
/** WriteRecord.data: field 6, length-delimited. */
const RECORD_DATA_TAG = 50;

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

interface Part {
  head: Uint8Array;
  data: Uint8Array;
  tail: Uint8Array;
  /** Encoded WriteRecord length. */
  length: number;
}

function partOf(r: WriteRecord): Part {
  // Fields 1..5 before the payload, 7..10 after it, exactly as WriteRecord.encode orders them.
  const head = WriteRecord.encode({ ...r, data: EMPTY, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 }).finish();
  const tail =
    r.tagName === "" && r.consistencyGroup === "" && r.capturedAtMs === 0 && r.readAtSequence === 0
      ? EMPTY
      : WriteRecord.encode({
          sequence: 0,
          kind: 0,
          diskIndex: 0,
          offset: 0,
          length: 0,
          data: EMPTY,
          tagName: r.tagName,
          consistencyGroup: r.consistencyGroup,
          capturedAtMs: r.capturedAtMs,
          readAtSequence: r.readAtSequence,
        }).finish();
  const data = r.data;
  const dataField = data.length === 0 ? 0 : 1 + varintSize(data.length) + data.length;
  return { head, data, tail, length: head.length + dataField + tail.length };
}

function batchBodyLength(parts: Part[]): number {
  let n = 0;
  for (const p of parts) n += 1 + varintSize(p.length) + p.length;
  return n;
}

function writeParts(buf: Buffer, at: number, parts: Part[]): number {
  for (const p of parts) {
    buf[at++] = BATCH_RECORDS_TAG;
    at = writeVarint(buf, at, p.length);
    at = writePart(buf, at, p);
  }
  return at;
}

/** One record's encoding: the fields before its payload, the payload (copied once), the rest. */
function writePart(buf: Buffer, at: number, p: Part): number {
  buf.set(p.head, at);
  at += p.head.length;
  if (p.data.length > 0) {
    buf[at++] = RECORD_DATA_TAG;
    at = writeVarint(buf, at, p.data.length);
    buf.set(p.data, at);
    at += p.data.length;
  }
  buf.set(p.tail, at);
  return at + p.tail.length;
}

/**
 * The bytes of `WriteRecord.encode(record).finish()` at offset `reserve` of a new buffer whose first
 * `reserve` bytes are left for the caller (a frame header), with one copy of the payload.
 */
export function encodeWriteRecordAfter(reserve: number, record: WriteRecord): Buffer {
  const p = partOf(record);
  const buf = Buffer.allocUnsafe(reserve + p.length);
  const at = writePart(buf, reserve, p);
  if (at !== buf.length) throw new Error(`write record encoding is ${at - reserve} bytes, expected ${p.length}`);
  return buf;
}

/** The bytes of `WriteBatch.encode({ records }).finish()`, built with one copy of each payload. */
export function encodeWriteBatch(records: readonly WriteRecord[]): Buffer {
  const parts = records.map(partOf);
  const buf = Buffer.allocUnsafe(batchBodyLength(parts));
  const end = writeParts(buf, 0, parts);
  if (end !== buf.length) throw new Error(`write batch encoding is ${end} bytes, expected ${buf.length}`);
  return buf;
}

/** gRPC serializer of ReplicateRequest: batches the fast way, anything else with the generated code. */
export function serializeReplicateRequest(request: ReplicateRequest): Buffer {
  const m = request.message;
  if (m?.$case !== "batch") {
    const out = ReplicateRequest.encode(request).finish();
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }
  const parts = m.value.records.map(partOf);
  const body = batchBodyLength(parts);
  const buf = Buffer.allocUnsafe(1 + varintSize(body) + body);
  buf[0] = REQUEST_BATCH_TAG;
  const end = writeParts(buf, writeVarint(buf, 1, body), parts);
  if (end !== buf.length) throw new Error(`replicate request encoding is ${end} bytes, expected ${buf.length}`);
  return buf;
}
