import { createCipheriv, createDecipheriv } from "node:crypto";
import { asBuffer } from "../async/worker-pool.js";
import { type CodecName, compressSync, decompressSync } from "./codec.js";
import { SegmentIntegrityError } from "./errors.js";
import { readSegmentHeader, type SegmentHeader, TAG_LENGTH } from "./header.js";

// The CPU-heavy half of a segment, compression and AES-256-GCM, as plain synchronous functions
// over bytes: the segment workers run them, so nothing here may touch records or the key ring.

export interface SealTask {
  op: "seal";
  codec: CodecName;
  /** The encoded header: it is the GCM associated data and the start of the segment. */
  header: Uint8Array;
  nonce: Uint8Array;
  key: Uint8Array;
  /** The uncompressed WriteBatch. */
  raw: Uint8Array;
}

export interface OpenTask {
  op: "open";
  segment: Uint8Array;
  key: Uint8Array;
  headerLength: number;
  nonce: Uint8Array;
  expect: { machineId?: string; firstSequence?: number };
}

export type SegmentTask = SealTask | OpenTask;

/** Compresses, encrypts and assembles header + ciphertext + tag into one new buffer. */
export function sealSegment(t: SealTask): Buffer {
  const packed = compressSync(t.codec, asBuffer(t.raw));
  const cipher = createCipheriv("aes-256-gcm", t.key, t.nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(t.header);
  const body = cipher.update(packed);
  const final = cipher.final();
  // allocUnsafeSlow: a buffer of its own, so the result can be moved to the caller's thread.
  const out = Buffer.allocUnsafeSlow(t.header.length + body.length + final.length + TAG_LENGTH);
  let o = 0;
  out.set(t.header, o);
  o += t.header.length;
  out.set(body, o);
  o += body.length;
  out.set(final, o);
  o += final.length;
  out.set(cipher.getAuthTag(), o);
  return out;
}

/**
 * Authenticates and decrypts a segment, then (believing its header only now) checks it against
 * what the caller expects and decompresses it. Returns the header and the raw WriteBatch.
 */
export function openSegment(t: OpenTask): { header: SegmentHeader; raw: Buffer } {
  const buf = asBuffer(t.segment);
  const { expect } = t;
  if (buf.length < t.headerLength + TAG_LENGTH) throw new SegmentIntegrityError("segment failed its integrity check: truncated, no authentication tag");
  let packed: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", t.key, t.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(buf.subarray(0, t.headerLength));
    decipher.setAuthTag(buf.subarray(buf.length - TAG_LENGTH));
    const body = decipher.update(buf.subarray(t.headerLength, buf.length - TAG_LENGTH));
    const final = decipher.final();
    packed = final.length === 0 ? body : Buffer.concat([body, final]);
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
  return { header, raw: decompressSync(header.codec, packed, header.rawLength) };
}
