import { promisify } from "node:util";
import zlib from "node:zlib";
import lz4 from "lz4-napi";
import { SegmentIntegrityError } from "./errors.js";

// Segments compress with the synchronous calls (compressSync, decompressSync) on their worker
// threads (segment-workers.ts). The asynchronous ones, on the libuv threadpool, remain for the
// codec benchmark's raw figures.
const deflateRaw = promisify(zlib.deflateRaw);
const inflateRaw = promisify(zlib.inflateRaw);
const brotliCompress = promisify(zlib.brotliCompress);
const brotliDecompress = promisify(zlib.brotliDecompress);

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

export async function compress(codec: CodecName, raw: Buffer): Promise<Buffer> {
  const chunkSize = chunkSizeFor(raw.length + 1024);
  switch (codec) {
    case "none":
      return raw;
    case "deflate-1":
      return deflateRaw(raw, { level: 1, chunkSize });
    case "deflate-6":
      return deflateRaw(raw, { level: 6, chunkSize });
    case "lz4":
      // Native, on the libuv threadpool like zlib's async calls: never on the event loop.
      return lz4.compress(raw);
    case "brotli-1":
    case "brotli-4":
      return brotliCompress(raw, {
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

/** Decompresses to exactly rawLength bytes; anything else is an integrity failure. */
export async function decompress(codec: CodecName, data: Buffer, rawLength: number): Promise<Buffer> {
  let out: Buffer;
  try {
    // maxOutputLength bounds memory even for a (authenticated but) hostile length.
    const maxOutputLength = Math.max(1, rawLength);
    const chunkSize = chunkSizeFor(rawLength);
    switch (codec) {
      case "none":
        out = data;
        break;
      case "deflate-1":
      case "deflate-6":
        out = await inflateRaw(data, { maxOutputLength, chunkSize });
        break;
      case "brotli-1":
      case "brotli-4":
        out = await brotliDecompress(data, { maxOutputLength, chunkSize });
        break;
      case "lz4":
        // The block carries its own length; the payload was authenticated before it gets here.
        if (data.length >= 4 && data.readUInt32LE(0) !== rawLength) {
          throw new Error(`lz4 block says ${data.readUInt32LE(0)} bytes`);
        }
        out = await lz4.uncompress(data);
        break;
      default:
        throw new TypeError(`unknown segment codec "${codec as string}"`);
    }
  } catch (err) {
    throw new SegmentIntegrityError(`segment payload does not decompress with ${codec}: ${(err as Error).message}`);
  }
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
  const chunkSize = chunkSizeFor(raw.length + 1024);
  switch (codec) {
    case "none":
      return raw;
    case "deflate-1":
    case "deflate-6":
      return zlib.deflateRawSync(raw, { level: codec === "deflate-1" ? 1 : 6, chunkSize });
    case "lz4":
      return lz4.compressSync(raw);
    case "brotli-1":
    case "brotli-4":
      return zlib.brotliCompressSync(raw, {
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

/** decompress() on the calling thread (a segment worker's). */
export function decompressSync(codec: CodecName, data: Buffer, rawLength: number): Buffer {
  let out: Buffer;
  try {
    const maxOutputLength = Math.max(1, rawLength);
    const chunkSize = chunkSizeFor(rawLength);
    switch (codec) {
      case "none":
        out = data;
        break;
      case "deflate-1":
      case "deflate-6":
        out = zlib.inflateRawSync(data, { maxOutputLength, chunkSize });
        break;
      case "brotli-1":
      case "brotli-4":
        out = zlib.brotliDecompressSync(data, { maxOutputLength, chunkSize });
        break;
      case "lz4":
        if (data.length >= 4 && data.readUInt32LE(0) !== rawLength) throw new Error(`lz4 block says ${data.readUInt32LE(0)} bytes`);
        out = lz4.uncompressSync(data);
        break;
      default:
        throw new TypeError(`unknown segment codec "${codec as string}"`);
    }
  } catch (err) {
    throw new SegmentIntegrityError(`segment payload does not decompress with ${codec}: ${(err as Error).message}`);
  }
  if (out.length !== rawLength) {
    throw new SegmentIntegrityError(`segment payload decompressed to ${out.length} bytes, header says ${rawLength}`);
  }
  return out;
}
