import { promisify } from "node:util";
import zlib from "node:zlib";
import lz4 from "lz4-napi";
import { SegmentIntegrityError } from "./errors.js";

// Segments compress with the synchronous calls (compressSync, decompressSync) on their worker
// threads (segment-workers.ts). The asynchronous ones, on the libuv threadpool, remain for the
// codec benchmark's raw figures.

export type CodecName = "none" | "deflate-1" | "deflate-6" | "brotli-1" | "brotli-4" | "lz4";

/** Wire ids; never renumber, old segments in storage carry them. */
const CODEC_IDS: Record<CodecName, number> = {
  none: 0,
  "deflate-1": 1,
  "deflate-6": 2,
  "brotli-1": 3,
  "brotli-4": 4,
  lz4: 5,
};

export const CODEC_NAMES = Object.keys(CODEC_IDS) as CodecName[];

/**
 * Default codec, chosen by `bench/codec.ts` (2-core box, 64-128 MiB mix of 40% random, 30% text,
 * 30% sparse pages, 8 MiB segments): brotli-1 compresses at ~180-210 MB/s per stream (~250-300
 * with two in flight) against ~80-90 for deflate-1, with nearly the same ratio (1.69 vs 1.73).
 * Compression runs on every received byte, decompression (~130 MB/s, still 5x the 23 MB/s a PS is
 * rated for) only on apply, so the cheaper compressor wins; deflate-6/brotli-4 buy ~4% for 2-3x CPU.
 */
export const DEFAULT_CODEC: CodecName = "brotli-1";

export function codecId(name: CodecName): number {
  const id = CODEC_IDS[name];
  if (id === undefined) throw new TypeError(`unknown segment codec "${name}" (known: ${CODEC_NAMES.join(", ")})`);
  return id;
}

export function codecName(id: number): CodecName | undefined {
  return CODEC_NAMES.find((n) => CODEC_IDS[n] === id);
}

/**
 * Output chunk size of the async (threadpool) calls. zlib's default is 16 KiB: every 16 KiB of
 * output is one hop back to the event loop, so an 8 MiB segment took hundreds of round trips and
 * compression waited on a busy loop. One chunk of about the expected size keeps it on the pool.
 */
function chunkSizeFor(bytes: number): number {
  return Math.min(Math.max(bytes, 64 * 1024), 64 * 1024 * 1024);
}

/**
 * The library calls behind the codecs in one flavour: synchronous, or on the libuv threadpool. One
 * codec table (compressWith, decompressWith) serves both flavours.
 */
interface CodecCalls<R> {
  same(data: Buffer): R;
  deflateRaw(raw: Buffer, options: zlib.ZlibOptions): R;
  inflateRaw(data: Buffer, options: zlib.ZlibOptions): R;
  brotliCompress(raw: Buffer, options: zlib.BrotliOptions): R;
  brotliDecompress(data: Buffer, options: zlib.BrotliOptions): R;
  lz4Compress(raw: Buffer): R;
  lz4Uncompress(data: Buffer): R;
}

const SYNC_CALLS: CodecCalls<Buffer> = {
  same: (data) => data,
  deflateRaw: (raw, options) => zlib.deflateRawSync(raw, options),
  inflateRaw: (data, options) => zlib.inflateRawSync(data, options),
  brotliCompress: (raw, options) => zlib.brotliCompressSync(raw, options),
  brotliDecompress: (data, options) => zlib.brotliDecompressSync(data, options),
  lz4Compress: (raw) => lz4.compressSync(raw),
  lz4Uncompress: (data) => lz4.uncompressSync(data),
};

/** Native lz4 runs on the libuv threadpool like zlib's async calls: never on the event loop. */
const ASYNC_CALLS: CodecCalls<Promise<Buffer>> = {
  same: async (data) => data,
  deflateRaw: promisify(zlib.deflateRaw),
  inflateRaw: promisify(zlib.inflateRaw),
  brotliCompress: promisify(zlib.brotliCompress),
  brotliDecompress: promisify(zlib.brotliDecompress),
  lz4Compress: (raw) => lz4.compress(raw),
  lz4Uncompress: (data) => lz4.uncompress(data),
};

function compressWith<R>(calls: CodecCalls<R>, codec: CodecName, raw: Buffer): R {
  const chunkSize = chunkSizeFor(raw.length + 1024);
  switch (codec) {
    case "none":
      return calls.same(raw);
    case "deflate-1":
    case "deflate-6":
      return calls.deflateRaw(raw, { level: codec === "deflate-1" ? 1 : 6, chunkSize });
    case "lz4":
      return calls.lz4Compress(raw);
    case "brotli-1":
    case "brotli-4":
      return calls.brotliCompress(raw, {
        chunkSize,
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: codec === "brotli-1" ? 1 : 4,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
        },
      });
    default:
      throw new TypeError(`unknown segment codec "${codec as string}"`);
  }
}

function decompressWith<R>(calls: CodecCalls<R>, codec: CodecName, data: Buffer, rawLength: number): R {
  // maxOutputLength bounds memory even for a (authenticated but) hostile length.
  const maxOutputLength = Math.max(1, rawLength);
  const chunkSize = chunkSizeFor(rawLength);
  switch (codec) {
    case "none":
      return calls.same(data);
    case "deflate-1":
    case "deflate-6":
      return calls.inflateRaw(data, { maxOutputLength, chunkSize });
    case "brotli-1":
    case "brotli-4":
      return calls.brotliDecompress(data, { maxOutputLength, chunkSize });
    case "lz4":
      // The block carries its own length; the payload was authenticated before it gets here.
      if (data.length >= 4 && data.readUInt32LE(0) !== rawLength) throw new Error(`lz4 block says ${data.readUInt32LE(0)} bytes`);
      return calls.lz4Uncompress(data);
    default:
      throw new TypeError(`unknown segment codec "${codec as string}"`);
  }
}

function undecodable(codec: CodecName, err: unknown): SegmentIntegrityError {
  return new SegmentIntegrityError(`segment payload does not decompress with ${codec}: ${(err as Error).message}`);
}

/** Anything but exactly rawLength bytes is an integrity failure. */
function exactLength(out: Buffer, rawLength: number): Buffer {
  if (out.length !== rawLength) {
    throw new SegmentIntegrityError(`segment payload decompressed to ${out.length} bytes, header says ${rawLength}`);
  }
  return out;
}

/**
 * Compresses on the calling thread. Segments call it from their worker threads (see
 * segment-workers.ts), where a synchronous call is the cheapest: no threadpool hop, no chunking.
 */
export function compressSync(codec: CodecName, raw: Buffer): Buffer {
  return compressWith(SYNC_CALLS, codec, raw);
}

/** Decompresses on the calling thread (a segment worker's) to exactly rawLength bytes. */
export function decompressSync(codec: CodecName, data: Buffer, rawLength: number): Buffer {
  let out: Buffer;
  try {
    out = decompressWith(SYNC_CALLS, codec, data, rawLength);
  } catch (err) {
    throw undecodable(codec, err);
  }
  return exactLength(out, rawLength);
}

/** compressSync() on the libuv threadpool (the codec benchmark's raw figures). */
export async function compress(codec: CodecName, raw: Buffer): Promise<Buffer> {
  return compressWith(ASYNC_CALLS, codec, raw);
}

/** decompressSync() on the libuv threadpool. */
export async function decompress(codec: CodecName, data: Buffer, rawLength: number): Promise<Buffer> {
  let out: Buffer;
  try {
    out = await decompressWith(ASYNC_CALLS, codec, data, rawLength);
  } catch (err) {
    throw undecodable(codec, err);
  }
  return exactLength(out, rawLength);
}
