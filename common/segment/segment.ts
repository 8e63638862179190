import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { WriteBatch, type WriteRecord } from "../../proto/index.js";
import { encodeWriteBatch } from "../wire/index.js";
import { type CodecName, compress, DEFAULT_CODEC, decompress } from "./codec.js";
import { SegmentIntegrityError } from "./errors.js";
import { encodeSegmentHeader, locateSegmentHeader, NONCE_LENGTH, readSegmentHeader, type SegmentHeader, TAG_LENGTH } from "./header.js";

export interface EncodeSegmentOptions {
  machineId: string;
  /** 32-byte AES-256 key, usually from deriveSegmentKey. */
  key: Buffer;
  keyId: string;
  codec?: CodecName;
  /** Defaults to Date.now(); settable for reproducible tests. */
  createdAtMs?: number;
}

export interface DecodeSegmentExpect {
  machineId?: string;
  firstSequence?: number;
}

function checkKey(key: Buffer, keyId: string): void {
  if (key.length !== 32) throw new RangeError(`segment key "${keyId}" must be 32 bytes, got ${key.length}`);
}

/** Compresses and encrypts a contiguous run of one machine's records. */
export async function encodeSegment(records: WriteRecord[], opts: EncodeSegmentOptions): Promise<Buffer> {
  if (records.length === 0) throw new RangeError("a segment needs at least one record");
  checkKey(opts.key, opts.keyId);
  const firstSequence = records[0]!.sequence;
  for (let i = 1; i < records.length; i++) {
    if (records[i]!.sequence !== firstSequence + i) {
      throw new RangeError(`segment records must be contiguous: expected sequence ${firstSequence + i} at index ${i}, got ${records[i]!.sequence}`);
    }
  }
  const raw = encodeWriteBatch(records);
  const codec = opts.codec ?? DEFAULT_CODEC;
  const packed = await compress(codec, raw);
  const nonce = randomBytes(NONCE_LENGTH);
  const header = encodeSegmentHeader({
    codec,
    keyId: opts.keyId,
    machineId: opts.machineId,
    firstSequence,
    lastSequence: firstSequence + records.length - 1,
    recordCount: records.length,
    rawLength: raw.length,
    createdAtMs: opts.createdAtMs ?? Date.now(),
    nonce,
  });
  const cipher = createCipheriv("aes-256-gcm", opts.key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(header);
  const body = cipher.update(packed);
  const final = cipher.final();
  return Buffer.concat([header, body, final, cipher.getAuthTag()]);
}

/** Authenticates, decrypts and decompresses a segment; any inconsistency is a SegmentIntegrityError. */
export async function decodeSegment(
  buf: Buffer,
  keys: (keyId: string) => Buffer | undefined,
  expect: DecodeSegmentExpect = {},
): Promise<{ header: SegmentHeader; records: WriteRecord[] }> {
  // Authenticate first: a damaged header must read as an integrity failure, never as whatever
  // its altered values happen to mean.
  const located = locateSegmentHeader(buf);
  const key = keys(located.keyId);
  if (!key) throw new SegmentIntegrityError(`segment is encrypted with unknown key id "${located.keyId}" (a key that was removed, or a damaged header)`);
  checkKey(key, located.keyId);
  if (buf.length < located.headerLength + TAG_LENGTH) throw new SegmentIntegrityError("segment failed its integrity check: truncated, no authentication tag");
  const aad = buf.subarray(0, located.headerLength);
  const body = buf.subarray(located.headerLength, buf.length - TAG_LENGTH);
  const tag = buf.subarray(buf.length - TAG_LENGTH);
  let packed: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, located.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    packed = Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new SegmentIntegrityError(
      `segment${expect.machineId ? ` of machine ${expect.machineId}` : ""}${expect.firstSequence !== undefined ? ` at sequence ${expect.firstSequence}` : ""} failed authentication (wrong key, or header or data altered)`,
    );
  }

  // Authenticated: from here on a bad value is a writer's bug or a segment in the wrong place.
  const header = readSegmentHeader(buf);
  if (expect.machineId !== undefined && header.machineId !== expect.machineId) {
    throw new SegmentIntegrityError(`segment belongs to machine "${header.machineId}", expected "${expect.machineId}"`);
  }
  if (expect.firstSequence !== undefined && header.firstSequence !== expect.firstSequence) {
    throw new SegmentIntegrityError(`segment starts at sequence ${header.firstSequence}, expected ${expect.firstSequence}`);
  }
  if (header.recordCount === 0 || header.lastSequence - header.firstSequence + 1 !== header.recordCount) {
    throw new SegmentIntegrityError(
      `segment header is inconsistent: sequences ${header.firstSequence}-${header.lastSequence} but ${header.recordCount} records`,
    );
  }

  const raw = await decompress(header.codec, packed, header.rawLength);
  let records: WriteRecord[];
  try {
    records = WriteBatch.decode(raw).records;
  } catch (err) {
    throw new SegmentIntegrityError(`segment payload is not a WriteBatch: ${(err as Error).message}`);
  }
  // Authenticated, so only a buggy writer gets here; still refuse rather than apply a wrong run.
  if (records.length !== header.recordCount) {
    throw new SegmentIntegrityError(`segment holds ${records.length} records, header says ${header.recordCount}`);
  }
  for (let i = 0; i < records.length; i++) {
    if (records[i]!.sequence !== header.firstSequence + i) {
      throw new SegmentIntegrityError(`segment record ${i} has sequence ${records[i]!.sequence}, expected ${header.firstSequence + i}`);
    }
  }
  return { header, records };
}
