// Database-shaped writes: the README's fio example (64 MiB of 4 KiB random writes through the NBD
// export) timed to RPO 0 and to processed, beside raw 4 KiB Put Page calls at the same offsets on
// the same Azurite; and an 8 KiB 70/30 read/write mix on 8 machines at 20 MB/s of writes.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { BlobServiceClient } from "@azure/storage-blob";
import { BenchLab, type MachineStatus, TICK_MS } from "./bench-lab.js";
import { type CpuSeconds, type CpuSnapshot, cpuDelta } from "./cpu.js";
import { type FioResult, runFio } from "./fio.js";
import { nbdSkipReason } from "./nbd.js";
import { type LagSummary, summarizeLag } from "./percentiles.js";
import { type Cell, fixed, markdownTable, ratio, textTable } from "./table.js";
import { seededInts } from "../common/random/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const MB = 1e6;

const TARGET_RPO_WRITES = 20_000;
const TARGET_CPU_US = 40;
const TARGET_PROCESSED_RATIO = 5;
const OLTP_WRITE_RATE = 20 * MB;
const OLTP_READ_SHARE = 70;
/** Reads are capped too, at 70/30 of the write rate: fio keeps a mix only while neither side is
 *  throttled, so with writes alone capped the agents served 96% reads, not 70%. */
const OLTP_READ_RATE = (OLTP_WRITE_RATE * OLTP_READ_SHARE) / (100 - OLTP_READ_SHARE);

export interface SmallWritesOptions {
  quick: boolean;
  say: (line: string) => void;
}

interface Sample {
  at: number;
  machines: MachineStatus[];
  cpu: CpuSnapshot;
}

export interface FioRow {
  fio: FioResult;
  /** Seconds from starting fio until every write is uploaded (RPO 0) / applied to the replica. */
  toRpo0: number;
  toProcessed: number;
  /** Agent + process server CPU seconds until RPO 0 and until processed. */
  cpuToRpo0: CpuSeconds;
  cpuToProcessed: CpuSeconds;
  rawPutPage: { calls: number; seconds: number };
}

export interface OltpRow {
  machines: number;
  fio: FioResult[];
  rpo: LagSummary;
  processedLag: LagSummary;
  seconds: number;
  cpu: CpuSeconds;
}

export type SmallWritesResult = { skipped: string } | { fio?: FioRow; oltp?: OltpRow; failures: string[] };

/** 16 in flight, each a 4 KiB Put Page at the offsets fio's random map visits (every 4 KiB of the range once). */
async function rawPutPages(connectionString: string, rangeBytes: number, seed: number): Promise<{ calls: number; seconds: number }> {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const container = service.getContainerClient(`bench-pages-${Date.now()}`);
  await container.create();
  try {
    const blob = container.getPageBlobClient("disk");
    await blob.create(1024 * MiB);
    const offsets = Array.from({ length: rangeBytes / (4 * KiB) }, (_, i) => i * 4 * KiB);
    const rand = seededInts(seed);
    for (let i = offsets.length - 1; i > 0; i--) {
      const j = rand(i + 1);
      [offsets[i], offsets[j]] = [offsets[j]!, offsets[i]!];
    }
    const page = randomBytes(4 * KiB);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < offsets.length; i = next++) await blob.uploadPages(page, offsets[i]!, page.length);
      }),
    );
    return { calls: offsets.length, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await container.deleteIfExists().catch(() => {});
  }
}

/** Samples status (and CPU) every tick while `work` runs, then until `done(samples)` says so. */
async function sampleUntil(
  lab: BenchLab,
  work: Promise<unknown>,
  done: (s: Sample, finished: boolean) => boolean,
  timeoutMs: number,
): Promise<Sample[]> {
  let finished = false;
  let failure: unknown;
  work.then(
    () => {
      finished = true;
    },
    (err: unknown) => {
      failure = err;
    },
  );
  const samples: Sample[] = [];
  const t0 = performance.now();
  for (;;) {
    const tick = performance.now();
    const machines = await lab.status();
    const s = { at: performance.now(), machines, cpu: lab.cpu() };
    samples.push(s);
    if (failure) throw failure;
    const wasFinished = finished;
    if (wasFinished && done(s, true)) return samples;
    if (!wasFinished) done(s, false);
    if (performance.now() - t0 > timeoutMs) throw new Error(`not caught up within ${timeoutMs / 1000} s`);
    await sleep(Math.max(0, tick + TICK_MS - performance.now()));
  }
}

async function fioRow(quick: boolean, say: (l: string) => void): Promise<FioRow> {
  const lab = await BenchLab.start({ machines: 1, storage: "azurite", diskSizeBytes: 1024 * MiB, captureBudgetBytes: 512 * MiB, heartbeatMs: TICK_MS, say });
  try {
    await lab.protectAll();
    const idle = await lab.waitCaughtUp(600_000);
    // The agent's queue drains before the machine counts as caught up; let the replica process too.
    for (let m = idle[0]!; m.processedSequence < m.uploadedSequence; m = (await lab.status())[0]!) await sleep(TICK_MS);
    const baseline = (await lab.status())[0]!.receivedSequence;
    const disk = (await lab.status())[0]!.disks[0]!;
    const size = quick ? 32 * MiB : 64 * MiB;
    const cpu0 = lab.cpu();
    const t0 = performance.now();
    const fioRun = runFio(disk.nbdUnix, { name: "oltp-4k", rw: "randwrite", blockSize: "4k", iodepth: 8, size: `${size / MiB}m` });
    let fio: FioResult | undefined;
    fioRun.then((f) => {
      fio = f;
    }, () => undefined);
    let rpo0: Sample | undefined;
    let processed: Sample | undefined;
    await sampleUntil(
      lab,
      fioRun,
      (s, finished) => {
        if (!finished || !fio) return false;
        const m = s.machines[0]!;
        const target = baseline + fio.writes;
        if (!rpo0 && m.uploadedSequence >= target && m.rpoSeconds === 0 && m.pendingBytes === 0) rpo0 = s;
        if (!processed && m.processedSequence >= target) processed = s;
        return rpo0 !== undefined && processed !== undefined;
      },
      600_000,
    );
    const row: FioRow = {
      fio: fio!,
      toRpo0: (rpo0!.at - t0) / 1000,
      toProcessed: (processed!.at - t0) / 1000,
      cpuToRpo0: cpuDelta(cpu0, rpo0!.cpu),
      cpuToProcessed: cpuDelta(cpu0, processed!.cpu),
      rawPutPage: { calls: 0, seconds: 0 },
    };
    say(`fio ${fio!.writes} writes: RPO 0 after ${row.toRpo0.toFixed(1)} s, processed after ${row.toProcessed.toFixed(1)} s`);
    row.rawPutPage = await rawPutPages(lab.connectionString!, size, 42);
    say(`raw 4 KiB Put Page, 16 in flight: ${(row.rawPutPage.calls / row.rawPutPage.seconds).toFixed(0)}/s`);
    return row;
  } finally {
    await lab.stop();
  }
}

async function oltpRow(quick: boolean, say: (l: string) => void): Promise<OltpRow> {
  const machines = 8;
  const seconds = quick ? 8 : 20;
  const lab = await BenchLab.start({ machines, storage: "azurite", diskSizeBytes: 64 * MiB, captureBudgetBytes: 128 * MiB, heartbeatMs: TICK_MS, say });
  try {
    await lab.protectAll();
    await lab.waitCaughtUp(600_000);
    const status = await lab.status();
    const cpu0 = lab.cpu();
    const t0 = performance.now();
    const runs = Promise.all(
      status.map((m, i) =>
        runFio(m.disks[0]!.nbdUnix, {
          name: `oltp-mix-${i}`,
          rw: "randrw",
          readMix: OLTP_READ_SHARE,
          blockSize: "8k",
          iodepth: 4,
          size: "64m",
          writeRate: OLTP_WRITE_RATE / machines,
          readRate: OLTP_READ_RATE / machines,
          runtimeSeconds: seconds,
          seed: 100 + i,
        }),
      ),
    );
    const samples = await sampleUntil(
      lab,
      runs,
      (s, finished) => finished && s.machines.every((m) => m.rpoSeconds === 0 && m.pendingBytes === 0 && m.processedSequence >= m.receivedSequence),
      seconds * 1000 + 600_000,
    );
    const fio = await runs;
    const last = samples.at(-1)!;
    const row: OltpRow = {
      machines,
      fio,
      rpo: summarizeLag(samples.flatMap((s) => s.machines.map((m) => m.rpoSeconds))),
      processedLag: summarizeLag(samples.flatMap((s) => s.machines.map((m) => m.processedLagSeconds))),
      seconds: (last.at - t0) / 1000,
      cpu: cpuDelta(cpu0, last.cpu),
    };
    say(`OLTP mix, 8 machines: RPO p99 ${fixed(row.rpo.p99, 2)} s, processed lag p99 ${fixed(row.processedLag.p99, 2)} s`);
    return row;
  } finally {
    await lab.stop();
  }
}

export async function runSmallWritesBench(o: SmallWritesOptions): Promise<SmallWritesResult> {
  const skipped = nbdSkipReason();
  if (skipped) return { skipped };
  const say = (line: string) => o.say(`small writes: ${line}`);
  const result: { fio?: FioRow; oltp?: OltpRow; failures: string[] } = { failures: [] };
  try {
    result.fio = await fioRow(o.quick, say);
  } catch (err) {
    result.failures.push(`fio 4 KiB: ${(err as Error).message}`);
  }
  try {
    result.oltp = await oltpRow(o.quick, say);
  } catch (err) {
    result.failures.push(`OLTP mix: ${(err as Error).message}`);
  }
  if (!result.fio && !result.oltp) throw new Error(result.failures.join("; "));
  return result;
}

const HEAD = ["figure", "srlab", "reference", "ratio", "CPU agent + PS", "target"];

/** Agent + process server; NaN (printed "–") when the reading failed, whose reason the row then shows. */
const srlabCpu = (c: CpuSeconds) => (c.failed ? Number.NaN : c.agent + c["process-server"]);

function rows(r: { fio?: FioRow; oltp?: OltpRow }): Cell[][] {
  const out: Cell[][] = [];
  const f = r.fio;
  if (f) {
    const writes = f.fio.writes;
    const toRpo = writes / f.toRpo0;
    const toProcessed = writes / f.toProcessed;
    const raw = f.rawPutPage.calls / f.rawPutPage.seconds;
    const usRpo = (srlabCpu(f.cpuToRpo0) * 1e6) / writes;
    const usProcessed = (srlabCpu(f.cpuToProcessed) * 1e6) / writes;
    const perWrite = (c: CpuSeconds) =>
      c.failed
        ? `FAILED (${c.failed})`
        : `agent ${fixed((c.agent * 1e6) / writes, 0)} + PS ${fixed((c["process-server"] * 1e6) / writes, 0)} µs/write (Azurite ${fixed((c.azurite * 1e6) / writes, 0)})`;
    out.push([
      `fio 4 KiB randwrite, iodepth 8, ${writes} writes: start → RPO 0`,
      `${fixed(toRpo, 0)} writes/s (${fixed(f.toRpo0, 1)} s; fio ${fixed(f.fio.iops, 0)} IOPS)`,
      "–",
      "–",
      perWrite(f.cpuToRpo0),
      `≥ ${TARGET_RPO_WRITES / 1000}k/s: ${toRpo >= TARGET_RPO_WRITES ? "yes" : "no"}`,
    ]);
    out.push([
      "the same: CPU per write, agent + PS, start → RPO 0",
      `${fixed(usRpo, 0)} µs`,
      "–",
      "–",
      `${fixed(usProcessed, 0)} µs/write until processed`,
      `≤ ${TARGET_CPU_US} µs: ${usRpo <= TARGET_CPU_US ? "yes" : "no"}`,
    ]);
    out.push([
      "the same: start → processed",
      `${fixed(toProcessed, 0)} writes/s (${fixed(f.toProcessed, 1)} s)`,
      `raw 4 KiB Put Page, 16 in flight: ${fixed(raw, 0)}/s`,
      ratio(toProcessed, raw),
      perWrite(f.cpuToProcessed),
      `≥ ${TARGET_PROCESSED_RATIO}×: ${toProcessed >= TARGET_PROCESSED_RATIO * raw ? "yes" : "no"}`,
    ]);
  }
  const o = r.oltp;
  if (o) {
    const bytes = o.fio.reduce((n, x) => n + x.bytes, 0);
    const writes = o.fio.reduce((n, x) => n + x.writes, 0);
    const reads = o.fio.reduce((n, x) => n + x.reads, 0);
    const rate = o.fio.reduce((n, x) => n + x.bytesPerSecond, 0) / MB;
    out.push([
      `8 KiB OLTP mix ${fixed((100 * reads) / (reads + writes), 0)}/${fixed((100 * writes) / (reads + writes), 0)}, ${o.machines} machines, ${fixed(rate, 1)} MB/s of writes`,
      `RPO p99 ${fixed(o.rpo.p99, 2)} s, processed lag p99 ${fixed(o.processedLag.p99, 2)} s (max ${fixed(o.rpo.max, 2)} / ${fixed(o.processedLag.max, 2)} s)`,
      "–",
      "–",
      o.cpu.failed
        ? `FAILED (${o.cpu.failed})`
        : `${fixed((srlabCpu(o.cpu) * 1000) / (bytes / MB), 1)} ms/MB, ${fixed((srlabCpu(o.cpu) * 1e6) / writes, 0)} µs/write (Azurite ${fixed((o.cpu.azurite * 1000) / (bytes / MB), 1)} ms/MB)`,
      `RPO ≤ 1 s: ${o.rpo.p99 <= 1 ? "yes" : "no"}, lag ≤ 5 s: ${o.processedLag.p99 <= 5 ? "yes" : "no"}`,
    ]);
  }
  return out;
}

function notes(r: { failures: string[] }): string[] {
  return [
    ...r.failures.map((f) => `FAILED ${f}`),
    "fio --ioengine=nbd over the export's Unix socket of a protected machine with a 1 GiB disk (Azurite, 250 ms heartbeats; times are " +
      "to the first status sample showing the state, so up to ~0.5 s late). RPO 0 = every fio write uploaded and nothing pending; processed = applied " +
      "to the replica page blob. Raw = the same number of 4 KiB Put Page calls at every 4 KiB offset of the range in random order, 16 in flight, to a " +
      "page blob on the same Azurite. CPU from /proc/PID/stat of every daemon over the same interval.",
    "OLTP: fio randrw, rwmixread 70, 8 KiB, iodepth 4, rates capped at 5.8 MB/s of reads and 2.5 MB/s of writes per machine (the row's mix is the one fio did), 8 machines with 64 MiB disks; status sampled every 250 ms from the start until every machine is uploaded and processed.",
  ];
}

export function formatSmallWrites(r: SmallWritesResult): string {
  if ("skipped" in r) return `small writes: skipped: ${r.skipped}`;
  return ["Small writes", textTable(HEAD, rows(r)), "", ...notes(r)].join("\n");
}

export function smallWritesMarkdown(r: SmallWritesResult): string {
  if ("skipped" in r) return `#### Small writes\n\nSkipped: ${r.skipped}`;
  return ["#### Small writes", "", markdownTable(HEAD, rows(r)), "", ...notes(r).map((n) => `${n}\n`)].join("\n").trimEnd();
}
