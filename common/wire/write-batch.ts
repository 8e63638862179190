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
  record: WriteRecord;
  /** Generated encodings of the fields around the payload, for records the fast path does not take. */
  head?: Uint8Array;
  tail?: Uint8Array;
  /** Encoded WriteRecord length. */
  length: number;
}

/** A field's varint size with its one-byte tag, or 0 when proto3 leaves it out (zero). */
function fieldSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

function writeField(buf: Buffer, at: number, tag: number, n: number): number {
  if (n === 0) return at;
  buf[at] = tag;
  return writeVarint(buf, at + 1, n);
}

/** Tags of WriteRecord's varint fields 1–5 and 9–10. */
const SEQUENCE_TAG = 8;
const KIND_TAG = 16;
const DISK_INDEX_TAG = 24;
const OFFSET_TAG = 32;
const LENGTH_TAG = 40;
const CAPTURED_AT_TAG = 72;
const READ_AT_TAG = 80;

const plainNumber = (n: number) => Number.isSafeInteger(n) && n >= 0;

/**
 * Records without tag strings and with non-negative numbers (every captured write) are encoded
 * here field by field, as WriteRecord.encode would: the generated writer costs a writer object
 * and two small buffers per record, which at thousands of 4 KiB writes a second shows in the
 * profile. Anything else goes through the generated code.
 */
function partOf(r: WriteRecord): Part {
  const data = r.data.length;
  const dataField = data === 0 ? 0 : 1 + varintSize(data) + data;
  const fast =
    r.tagName === "" &&
    r.consistencyGroup === "" &&
    plainNumber(r.sequence) &&
    plainNumber(r.kind) &&
    plainNumber(r.diskIndex) &&
    plainNumber(r.offset) &&
    plainNumber(r.length) &&
    plainNumber(r.capturedAtMs) &&
    plainNumber(r.readAtSequence);
  if (fast) {
    const numbers =
      fieldSize(r.sequence) + fieldSize(r.kind) + fieldSize(r.diskIndex) + fieldSize(r.offset) + fieldSize(r.length) + fieldSize(r.capturedAtMs) + fieldSize(r.readAtSequence);
    return { record: r, length: numbers + dataField };
  }
  // Fields 1..5 before the payload, 7..10 after it, exactly as WriteRecord.encode orders them.
  const head = WriteRecord.encode({ ...r, data: EMPTY, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 }).finish();
  const tail = WriteRecord.encode({
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
  return { record: r, head, tail, length: head.length + dataField + tail.length };
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
  const r = p.record;
  if (p.head) {
    buf.set(p.head, at);
    at += p.head.length;
  } else {
    at = writeField(buf, at, SEQUENCE_TAG, r.sequence);
    at = writeField(buf, at, KIND_TAG, r.kind);
    at = writeField(buf, at, DISK_INDEX_TAG, r.diskIndex);
    at = writeField(buf, at, OFFSET_TAG, r.offset);
    at = writeField(buf, at, LENGTH_TAG, r.length);
  }
  if (r.data.length > 0) {
    buf[at++] = RECORD_DATA_TAG;
    at = writeVarint(buf, at, r.data.length);
    buf.set(r.data, at);
    at += r.data.length;
  }
  if (p.tail) {
    buf.set(p.tail, at);
    return at + p.tail.length;
  }
  at = writeField(buf, at, CAPTURED_AT_TAG, r.capturedAtMs);
  return writeField(buf, at, READ_AT_TAG, r.readAtSequence);
}

/**
 * The bytes of `WriteRecord.encode(record).finish()` at offset `reserve` of a new buffer whose first
 * `reserve` bytes are left for the caller (a frame header), with one copy of the payload.
 */
export function encodeWriteRecordAfter(reserve: number, record: WriteRecord): Buffer {
  return encodeWriteRecordsAfter(reserve, [record])[0]!;
}

/**
 * encodeWriteRecordAfter for many records at once: views of one buffer, so a batch of small
 * writes costs one allocation, not one each.
 */
export function encodeWriteRecordsAfter(reserve: number, records: readonly WriteRecord[]): Buffer[] {
  const parts = records.map(partOf);
  let total = 0;
  for (const p of parts) total += reserve + p.length;
  const buf = Buffer.allocUnsafe(total);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of parts) {
    const end = writePart(buf, at + reserve, p);
    if (end !== at + reserve + p.length) throw new Error(`write record encoding is ${end - at - reserve} bytes, expected ${p.length}`);
    out.push(buf.subarray(at, end));
    at = end;
  }
  return out;
}

/**
 * The bytes of `WriteBatch.encode({ records }).finish()`, built with one copy of each payload into
 * a buffer of `alloc` (a new one by default).
 */
export function encodeWriteBatch(records: readonly WriteRecord[], alloc: (length: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const parts = records.map(partOf);
  const buf = alloc(batchBodyLength(parts));
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
