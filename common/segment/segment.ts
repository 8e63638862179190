import { randomBytes } from "node:crypto";
import { WriteBatch, type WriteRecord } from "../../proto/index.js";
import { asBuffer } from "../async/worker-pool.js";
import { SharedBufferPool } from "../bytes/index.js";
import { encodeWriteBatch } from "../wire/index.js";
import { type CodecName, DEFAULT_CODEC } from "./codec.js";
import { SegmentIntegrityError } from "./errors.js";
import { encodeSegmentHeader, locateSegmentHeader, NONCE_LENGTH, readSegmentHeader, type SegmentHeader, TAG_LENGTH } from "./header.js";
import type { OpenTask, SealTask } from "./seal.js";
import { segmentWorkers } from "./segment-workers.js";

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

/** The uncompressed batches handed to the segment workers. */
const rawBuffers = new SharedBufferPool();

function checkKey(key: Buffer, keyId: string): void {
  if (key.length !== 32) throw new RangeError(`segment key "${keyId}" must be 32 bytes, got ${key.length}`);
}

/** Compresses and encrypts a contiguous run of one machine's records (on a segment worker). */
export async function encodeSegment(records: WriteRecord[], opts: EncodeSegmentOptions): Promise<Buffer> {
  if (records.length === 0) throw new RangeError("a segment needs at least one record");
  checkKey(opts.key, opts.keyId);
  const firstSequence = records[0]!.sequence;
  for (let i = 1; i < records.length; i++) {
    if (records[i]!.sequence !== firstSequence + i) {
      throw new RangeError(`segment records must be contiguous: expected sequence ${firstSequence + i} at index ${i}, got ${records[i]!.sequence}`);
    }
  }
  // The batch is built here (it reads the records) in shared memory the worker reads in place;
  // the buffer is reused once the worker has answered.
  const batch = rawBuffers.takeBuilt((alloc) => encodeWriteBatch(records, alloc));
  const codec = opts.codec ?? DEFAULT_CODEC;
  const nonce = randomBytes(NONCE_LENGTH);
  const header = encodeSegmentHeader({
    codec,
    keyId: opts.keyId,
    machineId: opts.machineId,
    firstSequence,
    lastSequence: firstSequence + records.length - 1,
    recordCount: records.length,
    rawLength: batch.length,
    createdAtMs: opts.createdAtMs ?? Date.now(),
    nonce,
  });
  const task: SealTask = { op: "seal", codec, header, nonce, key: opts.key, raw: batch };
  try {
    return asBuffer(await segmentWorkers().run<Uint8Array>(task));
  } finally {
    rawBuffers.give(batch);
  }
}

/**
 * Authenticates, decrypts and decompresses a segment (on a segment worker); any inconsistency is a
 * SegmentIntegrityError. The caller keeps `buf`: the worker gets a copy of it.
 */
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
  const segment = Buffer.allocUnsafeSlow(buf.length);
  segment.set(buf);
  const task: OpenTask = {
    op: "open",
    segment,
    key,
    headerLength: located.headerLength,
    nonce: located.nonce,
    expect: { machineId: expect.machineId, firstSequence: expect.firstSequence },
  };
  const raw = asBuffer(await segmentWorkers().run<Uint8Array>(task, [segment.buffer]));

  // The worker authenticated the header and checked it against `expect`.
  const header = readSegmentHeader(buf);
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
