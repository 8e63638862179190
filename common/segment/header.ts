import { type CodecName, codecId, codecName } from "./codec.js";
import { SegmentIntegrityError } from "./errors.js";

export const SEGMENT_MAGIC = Buffer.from("SRSEG1", "ascii");
export const SEGMENT_VERSION = 1;
export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;

/** The plaintext segment header; all of it is GCM associated data. */
export interface SegmentHeader {
  version: number;
  codec: CodecName;
  keyId: string;
  machineId: string;
  firstSequence: number;
  lastSequence: number;
  recordCount: number;
  /** Length of the uncompressed WriteBatch protobuf. */
  rawLength: number;
  createdAtMs: number;
  nonce: Buffer;
  /** Bytes the header occupies at the start of the segment. */
  headerLength: number;
}

export type SegmentHeaderFields = Omit<SegmentHeader, "version" | "headerLength">;

function checkU64(name: string, v: number): bigint {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`segment ${name} must be a non-negative safe integer, got ${v}`);
  return BigInt(v);
}

// Layout (big-endian): magic[6] version:u8 codec:u8 keyIdLen:u16 keyId machineIdLen:u16 machineId
// first:u64 last:u64 count:u32 rawLength:u64 createdAtMs:u64 nonce[12]
export function encodeSegmentHeader(h: SegmentHeaderFields): Buffer {
  const keyId = Buffer.from(h.keyId, "utf8");
  const machineId = Buffer.from(h.machineId, "utf8");
  if (keyId.length === 0 || keyId.length > 0xffff) throw new RangeError("segment keyId must be 1..65535 bytes");
  if (machineId.length === 0 || machineId.length > 0xffff) throw new RangeError("segment machineId must be 1..65535 bytes");
  if (h.nonce.length !== NONCE_LENGTH) throw new RangeError(`segment nonce must be ${NONCE_LENGTH} bytes`);
  if (!Number.isInteger(h.recordCount) || h.recordCount < 0 || h.recordCount > 0xffffffff) {
    throw new RangeError(`segment recordCount out of range: ${h.recordCount}`);
  }
  const buf = Buffer.alloc(6 + 2 + 2 + keyId.length + 2 + machineId.length + 8 + 8 + 4 + 8 + 8 + NONCE_LENGTH);
  let o = SEGMENT_MAGIC.copy(buf, 0);
  o = buf.writeUInt8(SEGMENT_VERSION, o);
  o = buf.writeUInt8(codecId(h.codec), o);
  o = buf.writeUInt16BE(keyId.length, o);
  o += keyId.copy(buf, o);
  o = buf.writeUInt16BE(machineId.length, o);
  o += machineId.copy(buf, o);
  o = buf.writeBigUInt64BE(checkU64("firstSequence", h.firstSequence), o);
  o = buf.writeBigUInt64BE(checkU64("lastSequence", h.lastSequence), o);
  o = buf.writeUInt32BE(h.recordCount, o);
  o = buf.writeBigUInt64BE(checkU64("rawLength", h.rawLength), o);
  o = buf.writeBigUInt64BE(checkU64("createdAtMs", h.createdAtMs), o);
  o += h.nonce.copy(buf, o);
  return buf;
}

/** What authentication needs from a header, found without trusting any of its values. */
export interface LocatedHeader {
  keyId: string;
  nonce: Buffer;
  headerLength: number;
}

const FIXED_AFTER_IDS = 8 + 8 + 4 + 8 + 8;

/**
 * Finds the header's extent, key id and nonce from its length fields alone: enough to
 * authenticate the segment before any of its values (sequences, codec, sizes) is believed.
 */
export function locateSegmentHeader(buf: Buffer): LocatedHeader {
  const damaged = (what: string) => new SegmentIntegrityError(`segment failed its integrity check: header damaged or truncated (${what})`);
  if (buf.length < 8) throw damaged("shorter than the fixed prefix");
  if (!buf.subarray(0, 6).equals(SEGMENT_MAGIC)) throw new SegmentIntegrityError("not a srlab segment (bad magic)");
  let o = 8;
  const field = (what: string) => {
    if (o + 2 > buf.length) throw damaged(what);
    const len = buf.readUInt16BE(o);
    o += 2;
    if (len === 0 || o + len > buf.length) throw damaged(what);
    const at = o;
    o += len;
    return buf.subarray(at, at + len);
  };
  const keyId = field("key id").toString("utf8");
  field("machine id");
  o += FIXED_AFTER_IDS;
  if (o + NONCE_LENGTH > buf.length) throw damaged("nonce");
  const nonce = Buffer.from(buf.subarray(o, o + NONCE_LENGTH));
  return { keyId, nonce, headerLength: o + NONCE_LENGTH };
}

/** Parses (does not authenticate) the header at the start of a segment. */
export function readSegmentHeader(buf: Buffer): SegmentHeader {
  let o = 0;
  const need = (n: number, what: string) => {
    if (o + n > buf.length) throw new SegmentIntegrityError(`segment truncated inside the header (${what})`);
  };
  need(8, "magic");
  if (!buf.subarray(0, 6).equals(SEGMENT_MAGIC)) throw new SegmentIntegrityError("not a srlab segment (bad magic)");
  const version = buf.readUInt8(6);
  if (version !== SEGMENT_VERSION) throw new SegmentIntegrityError(`unsupported segment version ${version}`);
  const codec = codecName(buf.readUInt8(7));
  if (!codec) throw new SegmentIntegrityError(`unknown segment codec id ${buf.readUInt8(7)}`);
  o = 8;
  const str = (what: string) => {
    need(2, what);
    const len = buf.readUInt16BE(o);
    o += 2;
    need(len, what);
    const s = buf.toString("utf8", o, o + len);
    o += len;
    return s;
  };
  const u64 = (what: string) => {
    need(8, what);
    const v = buf.readBigUInt64BE(o);
    o += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SegmentIntegrityError(`segment ${what} out of range`);
    return Number(v);
  };
  const keyId = str("key id");
  const machineId = str("machine id");
  const firstSequence = u64("first sequence");
  const lastSequence = u64("last sequence");
  need(4, "record count");
  const recordCount = buf.readUInt32BE(o);
  o += 4;
  const rawLength = u64("raw length");
  const createdAtMs = u64("created-at");
  need(NONCE_LENGTH, "nonce");
  const nonce = Buffer.from(buf.subarray(o, o + NONCE_LENGTH));
  o += NONCE_LENGTH;
  return { version, codec, keyId, machineId, firstSequence, lastSequence, recordCount, rawLength, createdAtMs, nonce, headerLength: o };
}
