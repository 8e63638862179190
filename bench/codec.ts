// Measures the segment codecs on a realistic disk-write mix; picks DEFAULT_CODEC in common/segment.
// Run: node dist/bench/codec.js [--mib 64]
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import {
  CODEC_NAMES,
  type CodecName,
  compressPayload,
  decodeSegment,
  decompressPayload,
  deriveSegmentKey,
  encodeSegment,
} from "../common/segment/index.js";
import { WriteBatch, WriteKind, type WriteRecord } from "../proto/index.js";
import { seededFloats } from "../common/random/index.js";

const WORDS =
  "the of and to in is for on with as by at from INFO WARN ERROR DEBUG request response user id session " +
  "commit transaction table index page select insert update delete where value null true false config " +
  "service started stopped connection timeout retry ok failed bytes ms path /var/log/app /home/user"
    .split(" ");

/** Deterministic PRNG so every run measures the same payload. */

function textBlock(len: number, r: () => number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < len) {
    const line = `2024-05-${String(1 + Math.floor(r() * 28)).padStart(2, "0")}T${Math.floor(r() * 86400000)} ${Array.from(
      { length: 4 + Math.floor(r() * 10) },
      () => WORDS[Math.floor(r() * WORDS.length)],
    ).join(" ")} id=${Math.floor(r() * 1e9)}\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join("")).subarray(0, len);
}

/** Filesystem/database style pages: a small structured header, some data, mostly zeros. */
function sparseBlock(len: number, r: () => number): Buffer {
  const b = Buffer.alloc(len);
  for (let page = 0; page < len; page += 4096) {
    const used = Math.floor(r() * 512);
    b.writeUInt32LE(0xfeedbeef, page);
    b.writeUInt32LE(page, page + 4);
    randomBytes(Math.min(used, len - page - 8)).copy(b, page + 8);
  }
  return b;
}

/** ~40% incompressible (media, encrypted files), 30% text/logs, 30% sparse pages. */
export function makeWorkload(totalBytes: number, seed = 1): WriteRecord[] {
  const r = seededFloats(seed);
  const records: WriteRecord[] = [];
  let seq = 1;
  let total = 0;
  while (total < totalBytes) {
    const len = 4096 * (1 + Math.floor(r() * 16));
    const pick = r();
    const data = pick < 0.4 ? randomBytes(len) : pick < 0.7 ? textBlock(len, r) : sparseBlock(len, r);
    records.push({
      sequence: seq++,
      kind: WriteKind.WRITE_KIND_DATA,
      diskIndex: 0,
      offset: Math.floor(r() * 1_000_000) * 4096,
      length: len,
      data,
      tagName: "",
      consistencyGroup: "",
      capturedAtMs: Date.now(),
      readAtSequence: 0,
    });
    total += len;
  }
  return records;
}

export interface CodecBenchRow {
  codec: CodecName;
  ratio: number;
  compressMBps: number;
  compress2MBps: number;
  decompressMBps: number;
  segmentMBps: number;
  /** CPU of all threads per MB: what the codec costs a process server whatever else runs. */
  compressCpuMsPerMB: number;
  decompressCpuMsPerMB: number;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** CPU seconds of this process (all threads, the threadpool included) spent in fn. */
async function cpuOf(fn: () => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

export async function runCodecBench(opts: { mib?: number; segmentMiB?: number } = {}): Promise<CodecBenchRow[]> {
  const segBytes = (opts.segmentMiB ?? 8) * 1024 * 1024;
  const records = makeWorkload((opts.mib ?? 64) * 1024 * 1024);
  // Cut into ~segment-sized batches, as the uploader would.
  const batches: WriteRecord[][] = [];
  let cur: WriteRecord[] = [];
  let curBytes = 0;
  for (const rec of records) {
    cur.push(rec);
    curBytes += rec.length;
    if (curBytes >= segBytes) {
      batches.push(cur);
      cur = [];
      curBytes = 0;
    }
  }
  if (cur.length) batches.push(cur);
  const raws = batches.map((b) => Buffer.from(WriteBatch.encode({ records: b }).finish()));
  const rawTotal = raws.reduce((a, b) => a + b.length, 0);
  const key = deriveSegmentKey("bench", "k1");
  const mb = rawTotal / 1e6;

  const rows: CodecBenchRow[] = [];
  for (const codec of CODEC_NAMES) {
    await compressPayload(codec, raws[0]!); // warm up
    let packed: Buffer[] = [];
    let cpuCompress = 0;
    const tc = await timeIt(async () => {
      packed = [];
      cpuCompress = await cpuOf(async () => {
        for (const raw of raws) packed.push(await compressPayload(codec, raw));
      });
    });
    // Two segments at a time: what a 2-core process server can do with the threadpool.
    const tc2 = await timeIt(async () => {
      for (let i = 0; i < raws.length; i += 2) await Promise.all(raws.slice(i, i + 2).map((raw) => compressPayload(codec, raw)));
    });
    let cpuDecompress = 0;
    const td = await timeIt(async () => {
      cpuDecompress = await cpuOf(async () => {
        for (let i = 0; i < raws.length; i++) await decompressPayload(codec, packed[i]!, raws[i]!.length);
      });
    });
    const ts = await timeIt(async () => {
      for (const b of batches) {
        const seg = await encodeSegment(b, { machineId: "bench", key, keyId: "k1", codec });
        await decodeSegment(seg, () => key);
      }
    });
    const packedTotal = packed.reduce((a, b) => a + b.length, 0);
    rows.push({
      codec,
      ratio: rawTotal / packedTotal,
      compressMBps: mb / tc,
      compress2MBps: mb / tc2,
      decompressMBps: mb / td,
      segmentMBps: mb / ts,
      compressCpuMsPerMB: (cpuCompress * 1000) / mb,
      decompressCpuMsPerMB: (cpuDecompress * 1000) / mb,
    });
  }
  return rows;
}

export function formatCodecTable(rows: CodecBenchRow[]): string {
  const head = ["codec", "ratio", "compress MB/s", "compress x2 MB/s", "decompress MB/s", "encode+decode seg MB/s", "compress CPU ms/MB", "decompress CPU ms/MB"];
  const lines = rows.map((r) => [
    r.codec,
    r.ratio.toFixed(2),
    r.compressMBps.toFixed(0),
    r.compress2MBps.toFixed(0),
    r.decompressMBps.toFixed(0),
    r.segmentMBps.toFixed(0),
    r.compressCpuMsPerMB.toFixed(2),
    r.decompressCpuMsPerMB.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [fmt(head), ...lines.map(fmt)].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf("--mib");
  const mib = i > 0 ? Number(process.argv[i + 1]) : 64;
  const rows = await runCodecBench({ mib });
  console.log(`segment codecs on a ${mib} MiB mixed disk-write payload (40% random, 30% text, 30% sparse pages)`);
  console.log(formatCodecTable(rows));
}
