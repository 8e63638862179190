import { type FileHandle, open } from "node:fs/promises";
import { FRAME_HEADER, FrameReader, parseFrameHeader } from "./frame.js";

/** One log file of a machine's cache, named by its first sequence number. */
export interface LogFile {
  first: number;
  /** first - 1 while empty. */
  last: number;
  path: string;
  /** Durable bytes (everything below is fsynced and valid). */
  size: number;
  index: { sequence: number; offset: number }[];
}

export const LOG_RE = /^(\d{20})\.log$/;

export function logName(first: number): string {
  return `${String(first).padStart(20, "0")}.log`;
}

/** One sparse index entry per this many records keeps memory small for a large cache. */
const INDEX_EVERY = 64;
/**
 * ...and at least one per this many bytes, so finding a sequence (the uploader's read of each
 * segment) hops over a few frame headers instead of up to 63 one-read-each hops of large writes.
 */
const INDEX_EVERY_BYTES = 1024 * 1024;

export function wantsIndexEntry(file: LogFile, sequence: number, offset: number): boolean {
  if ((sequence - file.first) % INDEX_EVERY === 0) return true;
  const previous = file.index[file.index.length - 1];
  return offset - (previous?.offset ?? 0) >= INDEX_EVERY_BYTES;
}

/** What a scan found past the last complete frame. */
export interface TornTail {
  file: string;
  validBytes: number;
  droppedBytes: number;
}

/**
 * Reads a log file's frames to rebuild its sparse index, truncating a torn tail (a crash
 * mid-append leaves a partial frame; nothing after it was ever acknowledged).
 */
export async function scanLogFile(path: string, first: number, onTorn: (torn: TornTail) => void): Promise<LogFile> {
  const fh = await open(path, "r+");
  try {
    const { size } = await fh.stat();
    const file: LogFile = { first, last: first - 1, path, size: 0, index: [] };
    const reader = new FrameReader(fh, 0, size);
    for (;;) {
      const f = await reader.next();
      if (f === "end") break;
      if (f === "torn" || f.sequence !== file.last + 1) {
        onTorn({ file: path, validBytes: reader.offset, droppedBytes: size - reader.offset });
        await fh.truncate(reader.offset);
        await fh.datasync();
        break;
      }
      if (wantsIndexEntry(file, f.sequence, f.offset)) file.index.push({ sequence: f.sequence, offset: f.offset });
      file.last = f.sequence;
      file.size = f.offset + f.frame.length;
    }
    return file;
  } finally {
    await fh.close();
  }
}

/** Offset of a sequence in a file: the sparse index, then hops over frame headers. */
export async function locateSequence(fh: FileHandle, file: LogFile, sequence: number, machineId: string): Promise<number> {
  let offset = 0;
  let at = file.first;
  for (const e of file.index) {
    if (e.sequence > sequence) break;
    offset = e.offset;
    at = e.sequence;
  }
  const h = Buffer.alloc(FRAME_HEADER);
  while (at < sequence) {
    await fh.read(h, 0, FRAME_HEADER, offset);
    const info = parseFrameHeader(h);
    if (!info || info.sequence !== at) throw new Error(`machine "${machineId}": cache file ${file.path} is corrupt at offset ${offset}`);
    offset += FRAME_HEADER + info.payloadLength;
    at++;
  }
  return offset;
}
