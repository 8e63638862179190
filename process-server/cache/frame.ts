import type { FileHandle } from "node:fs/promises";
import { encodeWriteRecordsAfter, receivedEncoding } from "../../common/wire/index.js";
import type { WriteRecord } from "../../proto/index.js";
import { crc32 } from "node:zlib";

// On-disk record frame (little-endian):
//   u32 payloadLength | u32 crc32(bytes 8..end) | u64 sequence | i64 capturedAtMs | payload
// payload is the protobuf WriteRecord. sequence and capturedAtMs are repeated in the header so
// recovery and RPO lookups need not decode payloads.
export const FRAME_HEADER = 24;
/** Far above any real write; a larger length is a torn or corrupt header. */
export const MAX_PAYLOAD = 256 * 1024 * 1024;

export interface FrameInfo {
  sequence: number;
  capturedAtMs: number;
  payloadLength: number;
}

export function encodeFrame(sequence: number, capturedAtMs: number, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  buf.set(payload, FRAME_HEADER);
  writeFrameHeader(buf, sequence, capturedAtMs, buf.subarray(FRAME_HEADER));
  return buf;
}

/** Fills a frame's 24-byte header for `payload`, which follows it on disk. */
function writeFrameHeader(header: Buffer, sequence: number, capturedAtMs: number, payload: Uint8Array): void {
  header.writeUInt32LE(payload.length, 0);
  writeU64(header, sequence, 8);
  writeU64(header, Math.trunc(capturedAtMs), 16);
  // The CRC of bytes 8..end, continued from the header's part over the payload.
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(8, FRAME_HEADER))), 4);
}

/** Signed 64-bit LE; safe non-negative integers (every real one) without a BigInt. */
function writeU64(buf: Buffer, n: number, at: number): void {
  if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER)) {
    buf.writeBigInt64LE(BigInt(n), at);
    return;
  }
  buf.writeUInt32LE(n % 0x1_0000_0000, at);
  buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
}

/** A record with its frame as two pieces, written one after the other. */
export interface FramedRecord {
  record: WriteRecord;
  header: Buffer;
  /** The encoded WriteRecord. */
  payload: Buffer;
}

/**
 * The frames of records: the same bytes as encodeFrame(..., encoded record) each. A record received
 * from an agent keeps the bytes it arrived in as its payload (a view, no copy); any other record is
 * encoded once, all of them into one buffer. The headers share one buffer too.
 */
export function frameRecords(records: readonly WriteRecord[]): FramedRecord[] {
  const received = records.map(receivedEncoding);
  const missing = records.filter((_, i) => received[i] === undefined);
  const encoded = missing.length > 0 ? encodeWriteRecordsAfter(0, missing) : [];
  const headers = Buffer.allocUnsafe(FRAME_HEADER * records.length);
  let next = 0;
  return records.map((record, i) => {
    const payload = received[i] ?? encoded[next++]!;
    const header = headers.subarray(i * FRAME_HEADER, (i + 1) * FRAME_HEADER);
    writeFrameHeader(header, record.sequence, record.capturedAtMs, payload);
    return { record, header, payload };
  });
}

/** Header fields, or undefined if the length is implausible. */
export function parseFrameHeader(h: Buffer): FrameInfo | undefined {
  const payloadLength = h.readUInt32LE(0);
  if (payloadLength === 0 || payloadLength > MAX_PAYLOAD) return undefined;
  return { payloadLength, sequence: Number(h.readBigUInt64LE(8)), capturedAtMs: Number(h.readBigInt64LE(16)) };
}

export function frameCrcOk(frame: Buffer): boolean {
  return frame.readUInt32LE(4) === crc32(frame.subarray(8));
}

export interface ScannedFrame extends FrameInfo {
  offset: number;
  /** Header + payload; a view into the reader's buffer, valid until the next call. */
  frame: Buffer;
}

/**
 * Reads frames sequentially from [start, end) of a file in large chunks. next() returns a frame,
 * "end" at exactly `end`, or "torn" when what follows is incomplete or fails its CRC.
 */
export class FrameReader {
  private buf = Buffer.alloc(0);
  private bufStart: number;
  private pos: number;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly end: number,
    private readonly chunk = 4 * 1024 * 1024,
  ) {
    this.bufStart = start;
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  private async ensure(n: number): Promise<boolean> {
    if (this.pos + n > this.end) return false;
    const have = this.bufStart + this.buf.length - this.pos;
    if (have >= n) return true;
    const want = Math.min(Math.max(n, this.chunk), this.end - this.pos);
    const next = Buffer.allocUnsafe(want);
    const keep = this.buf.subarray(this.pos - this.bufStart);
    keep.copy(next, 0);
    let filled = keep.length;
    while (filled < want) {
      const { bytesRead } = await this.fh.read(next, filled, want - filled, this.pos + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.buf = next.subarray(0, filled);
    this.bufStart = this.pos;
    return filled >= n;
  }

  async next(): Promise<ScannedFrame | "end" | "torn"> {
    if (this.pos >= this.end) return "end";
    if (!(await this.ensure(FRAME_HEADER))) return "torn";
    const at = this.pos - this.bufStart;
    const info = parseFrameHeader(this.buf.subarray(at, at + FRAME_HEADER));
    if (!info) return "torn";
    const size = FRAME_HEADER + info.payloadLength;
    if (!(await this.ensure(size))) return "torn";
    const s = this.pos - this.bufStart;
    const frame = this.buf.subarray(s, s + size);
    if (!frameCrcOk(frame)) return "torn";
    const offset = this.pos;
    this.pos += size;
    return { ...info, offset, frame };
  }
}
