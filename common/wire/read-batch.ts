import { ReplicateRequest, WriteRecord } from "../../proto/index.js";

// Protobuf decoding of write records whose payloads stay views of the buffer they arrived in. The
// generated decoder copies every payload (Buffer.from(reader.bytes())); on the process server that
// was one more full copy of everything received, and its garbage. Only the well-formed shapes the
// encoders in write-batch.ts produce take the fast path; anything else (unknown fields, other wire
// types, values beyond 2^53) is handed to the generated decoder, which skips or rejects it as before.

/** Thrown inside this file when the input is not of the fast path's shape. */
class NotFastPath extends Error {}

const NOT_FAST = new NotFastPath();

class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** An unsigned varint no larger than 2^53 - 1. */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw NOT_FAST;
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) throw NOT_FAST;
        return value;
      }
      scale *= 128;
    }
    throw NOT_FAST;
  }

  /** The extent of a length-delimited field's value. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) throw NOT_FAST;
    this.pos = start + length;
    return [start, this.pos];
  }
}

const utf8 = new TextDecoder("utf-8");

function view(buf: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
}

function readRecord(c: Cursor, end: number): WriteRecord {
  const r: WriteRecord = {
    sequence: 0,
    kind: 0,
    diskIndex: 0,
    offset: 0,
    length: 0,
    data: EMPTY,
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: 0,
    readAtSequence: 0,
  };
  const inner = new Cursor(c.buf, c.pos, end);
  while (inner.pos < end) {
    const tag = inner.varint();
    switch (tag) {
      case 8:
        r.sequence = inner.varint();
        break;
      case 16: {
        // int32 enum: a negative value is a 10-byte varint, which varint() refuses.
        const v = inner.varint();
        if (v > 0x7fffffff) throw NOT_FAST;
        r.kind = v;
        break;
      }
      case 24: {
        const v = inner.varint();
        if (v > 0xffffffff) throw NOT_FAST;
        r.diskIndex = v;
        break;
      }
      case 32:
        r.offset = inner.varint();
        break;
      case 40:
        r.length = inner.varint();
        break;
      case 50: {
        const [s, e] = inner.span();
        r.data = view(c.buf, s, e);
        break;
      }
      case 58: {
        const [s, e] = inner.span();
        r.tagName = utf8.decode(c.buf.subarray(s, e));
        break;
      }
      case 66: {
        const [s, e] = inner.span();
        r.consistencyGroup = utf8.decode(c.buf.subarray(s, e));
        break;
      }
      case 72:
        r.capturedAtMs = inner.varint();
        break;
      case 80:
        r.readAtSequence = inner.varint();
        break;
      default:
        throw NOT_FAST;
    }
  }
  c.pos = end;
  return r;
}

const EMPTY = Buffer.alloc(0);

/**
 * `WriteRecord.decode(bytes)` with `data` a view of `bytes` (no copy): the record keeps the
 * buffer alive, and must not outlive a buffer that will be reused.
 */
export function decodeWriteRecordView(bytes: Uint8Array): WriteRecord {
  try {
    return readRecord(new Cursor(bytes, 0, bytes.length), bytes.length);
  } catch (err) {
    if (err !== NOT_FAST) throw err;
    return WriteRecord.decode(bytes);
  }
}

/** The bytes each record was decoded from, for records decoded by deserializeReplicateRequest. */
const receivedBytes = new WeakMap<WriteRecord, Buffer>();

/**
 * The encoded WriteRecord a record was decoded from by deserializeReplicateRequest: a view of the
 * received message, so whoever stores records as encoded (the process server's cache) need not
 * encode and copy them again. Undefined for records from anywhere else. Valid because nothing
 * changes a received record: its fields and these bytes say the same.
 */
export function receivedEncoding(record: WriteRecord): Buffer | undefined {
  return receivedBytes.get(record);
}

/** WriteBatch.records and ReplicateRequest.batch tags (fields 1 and 2, length-delimited). */
const BATCH_RECORDS_TAG = 10;
const REQUEST_BATCH_TAG = 18;

/**
 * gRPC deserializer of ReplicateRequest: a batch's payloads are views of the message buffer
 * (grpc-js hands each message its own buffer), anything else goes through the generated code.
 */
export function deserializeReplicateRequest(message: Buffer): ReplicateRequest {
  try {
    const c = new Cursor(message, 0, message.length);
    if (c.varint() !== REQUEST_BATCH_TAG) throw NOT_FAST;
    const [start, end] = c.span();
    if (end !== message.length) throw NOT_FAST;
    const records: WriteRecord[] = [];
    const spans: number[] = [];
    const b = new Cursor(message, start, end);
    while (b.pos < end) {
      if (b.varint() !== BATCH_RECORDS_TAG) throw NOT_FAST;
      const length = b.varint();
      if (b.pos + length > end) throw NOT_FAST;
      spans.push(b.pos, b.pos + length);
      records.push(readRecord(b, b.pos + length));
    }
    // Only once the whole message took the fast way (a fallback decodes every record anew).
    records.forEach((r, i) => {
      receivedBytes.set(r, view(message, spans[2 * i]!, spans[2 * i + 1]!));
    });
    return { message: { $case: "batch", value: { records } } };
  } catch (err) {
    if (err !== NOT_FAST) throw err;
    return ReplicateRequest.decode(message);
  }
}
