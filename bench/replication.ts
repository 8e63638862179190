// Sustained replication throughput and RPO lag for 1, 8 and 32 machines, against the raw rate of
// uploading the same bytes to the same Azurite in the same run.
import { execFile } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { type BenchLabOptions, BenchLab } from "./bench-lab.js";
import { type CpuPerMB, type CpuSeconds, cpuDelta, cpuPerMB, daemonCpuDelta, formatCpuPerMB } from "./cpu.js";
import { type DrainResult, driveAndDrain } from "./drive-and-drain.js";
import { type LagSummary, summarizeLag } from "./percentiles.js";
import { rawBlobUpload } from "./raw-upload.js";
import { type Cell, fixed, markdownTable, ratio, textTable } from "./table.js";

const MiB = 1024 * 1024;
const MB = 1e6;

/** Offered rate of the throughput burst, all machines together: well above what the pipeline drains. */
const BURST_RATE = 400 * MB;
/** Aggregate churn of the RPO run (the issue's 20 MB/s; ASR's PS maximum is ≈23 MB/s). */
const CHURN_RATE = 20 * MB;
const TARGET_RATIO = 0.5;
const TARGET_DIRECTORY_MBPS = 150;
const TARGET_RPO_P99 = 1;
const TARGET_CPU_MS_PER_MB = 8;
const TARGET_STATUS_MS = 100;
const CLI_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface ReplicationBenchOptions {
  quick: boolean;
  say: (line: string) => void;
  /**
   * Only the Azurite rows of these machine counts (status timed at the largest), without the
   * directory and two-process-server rows: to measure one size again. Default: every row.
   */
  machines?: number[];
}

interface Plan {
  machineCounts: number[];
  /** Bytes written by the throughput burst, all machines together. */
  burstBytes: number;
  rpoSeconds: number;
}

export interface ThroughputRow {
  machines: number;
  storage: "azurite" | "directory";
  processServers: number;
  run: DrainResult;
  mbps: number;
  rawMBps?: number;
  cpu: CpuPerMB;
  /** Machines per process server, when there are several. */
  spread?: Record<string, number>;
  /** CPU ms per MB of each process server, when there are several. */
  perProcessServer?: Record<string, number>;
}

export interface StatusTiming {
  machines: number;
  /** One status call as the CLI makes it (list components + machines, build the document), ms. */
  callP50: number;
  callMax: number;
  /** `srlab status --json` as a new process, start to exit, ms (includes Node's start-up). */
  cliP50: number;
}

export interface RpoRow {
  machines: number;
  run: DrainResult;
  churnMBps: number;
  lag: LagSummary;
}

export interface ReplicationBenchResult {
  plan: Plan;
  throughput: ThroughputRow[];
  rpo: RpoRow[];
  status?: StatusTiming;
  /** Labs that failed, with the reason; the other rows still stand. */
  failures: string[];
}

function plan(quick: boolean): Plan {
  return quick
    ? { machineCounts: [1, 8], burstBytes: 256 * MiB, rpoSeconds: 8 }
    : { machineCounts: [1, 8, 32], burstBytes: 512 * MiB, rpoSeconds: 20 };
}

function labOptions(machines: number, storage: "azurite" | "directory", p: Plan, say: (l: string) => void): BenchLabOptions {
  return {
    machines,
    storage,
    diskSizeBytes: 64 * MiB,
    // Room for the whole burst of one machine plus the RPO run's backlog.
    captureBudgetBytes: Math.max(256 * MiB, Math.ceil((2 * p.burstBytes) / machines)),
    heartbeatMs: 250,
    say,
  };
}

async function withLab<T>(o: BenchLabOptions, fn: (lab: BenchLab) => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const lab = await BenchLab.start(o);
  try {
    o.say(`${o.machines} machine(s) on ${o.storage}: lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const t1 = Date.now();
    await lab.protectAll();
    o.say(`${o.machines} machine(s): protected in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    return await fn(lab);
  } finally {
    await lab.stop();
  }
}

async function burst(lab: BenchLab, machines: number, p: Plan): Promise<{ run: DrainResult; cpu: CpuSeconds }> {
  const before = lab.cpu();
  const run = await driveAndDrain(
    lab,
    { profile: "random", rateBytesPerSecond: BURST_RATE / machines, durationSeconds: p.burstBytes / BURST_RATE },
    // Generous: even 2 MB/s would get through; a stuck pipeline is reported, not waited on forever.
    Math.max(180_000, (p.burstBytes / (2 * MB)) * 1000),
  );
  return { run, cpu: cpuDelta(before, lab.cpu()) };
}

function runCli(args: string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI_MAIN, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err) => (err ? reject(err) : resolve(performance.now() - t0)));
  });
}

async function timeStatus(lab: BenchLab, machines: number): Promise<StatusTiming> {
  const calls: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    await lab.status();
    calls.push(performance.now() - t0);
  }
  const cli: number[] = [];
  for (let i = 0; i < 5; i++) cli.push(await runCli(["status", "--json", "--dir", lab.dir]));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { machines, callP50: median(calls), callMax: Math.max(...calls), cliP50: median(cli) };
}

/** Per process server: machines assigned, and CPU ms per MB of what all machines wrote. */
async function spreadOf(lab: BenchLab): Promise<Record<string, number>> {
  const spread: Record<string, number> = {};
  for (const m of await lab.status()) spread[m.processServer ?? "none"] = (spread[m.processServer ?? "none"] ?? 0) + 1;
  return spread;
}

export async function runReplicationBench(o: ReplicationBenchOptions): Promise<ReplicationBenchResult> {
  const p = plan(o.quick);
  if (o.machines) p.machineCounts = o.machines;
  const say = (line: string) => o.say(`replication: ${line}`);
  const result: ReplicationBenchResult = { plan: p, throughput: [], rpo: [], failures: [] };
  // One failed lab (a daemon starved on a busy machine) must not throw away the others' figures.
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      const reason = `${what}: ${(err as Error).message}`;
      say(`failed: ${reason}`);
      result.failures.push(reason);
    }
  };

  for (const machines of p.machineCounts) {
    await attempt(`${machines} machine(s) on Azurite`, () => withLab(labOptions(machines, "azurite", p, say), async (lab) => {
      const { run, cpu } = await burst(lab, machines, p);
      const mbps = run.bytes / MB / run.seconds;
      const perMB = cpuPerMB(cpu, run.bytes);
      say(`${machines} machine(s): ${(run.bytes / MB).toFixed(0)} MB replicated in ${run.seconds.toFixed(1)} s = ${mbps.toFixed(1)} MB/s; CPU ms/MB agent + PS = ${formatCpuPerMB(perMB)}`);
      const raw = await rawBlobUpload(lab.connectionString!, run.bytes);
      const rawMBps = raw.bytes / MB / raw.seconds;
      say(`${machines} machine(s): raw upload of the same bytes to the same Azurite: ${rawMBps.toFixed(1)} MB/s`);
      result.throughput.push({ machines, storage: "azurite", processServers: 1, run, mbps, rawMBps, cpu: perMB });
      if (machines === Math.max(...p.machineCounts)) {
        result.status = await timeStatus(lab, machines);
        say(`status with ${machines} machines: call ${result.status.callP50.toFixed(0)} ms (p50), CLI ${result.status.cliP50.toFixed(0)} ms`);
      }

      const churn = await driveAndDrain(
        lab,
        { profile: "random", rateBytesPerSecond: CHURN_RATE / machines, durationSeconds: p.rpoSeconds },
        p.rpoSeconds * 1000 + 300_000,
      );
      const lag = summarizeLag(churn.rpoSamples);
      say(`${machines} machine(s): RPO lag at ${(CHURN_RATE / MB).toFixed(0)} MB/s p50 ${fixed(lag.p50, 2)} s, p99 ${fixed(lag.p99, 2)} s, max ${fixed(lag.max, 2)} s`);
      result.rpo.push({ machines, run: churn, churnMBps: churn.bytes / MB / churn.writeSeconds, lag });
    }));
  }

  if (o.machines) {
    if (result.throughput.length === 0 && result.rpo.length === 0) throw new Error(result.failures.join("; "));
    return result;
  }
  await attempt("1 machine on directory storage", () => withLab(labOptions(1, "directory", p, say), async (lab) => {
    const { run, cpu } = await burst(lab, 1, p);
    const mbps = run.bytes / MB / run.seconds;
    const perMB = cpuPerMB(cpu, run.bytes);
    say(`1 machine on directory storage: ${(run.bytes / MB).toFixed(0)} MB in ${run.seconds.toFixed(1)} s = ${mbps.toFixed(1)} MB/s; CPU ms/MB ${formatCpuPerMB(perMB)}`);
    result.throughput.push({ machines: 1, storage: "directory", processServers: 1, run, mbps, cpu: perMB });
  }));

  // Scale-out: the same burst over 8 machines shared by two process servers.
  await attempt("8 machines, 2 process servers", () =>
    withLab({ ...labOptions(8, "azurite", p, say), processServers: 2 }, async (lab) => {
      const before = lab.cpu();
      const { run, cpu } = await burst(lab, 8, p);
      const after = lab.cpu();
      const mbps = run.bytes / MB / run.seconds;
      // NaN (printed "–") for a process server whose reading cannot be compared.
      const perProcessServer = Object.fromEntries(
        lab.processServerNames().map((name) => [name, ((daemonCpuDelta(before, after, name) ?? Number.NaN) * 1000) / (run.bytes / MB)]),
      );
      const spread = await spreadOf(lab);
      const raw = await rawBlobUpload(lab.connectionString!, run.bytes);
      const rawMBps = raw.bytes / MB / raw.seconds;
      say(`8 machines on 2 process servers: ${mbps.toFixed(1)} MB/s (raw ${rawMBps.toFixed(1)}), spread ${JSON.stringify(spread)}`);
      result.throughput.push({ machines: 8, storage: "azurite", processServers: 2, run, mbps, rawMBps, cpu: cpuPerMB(cpu, run.bytes), spread, perProcessServer });
    }),
  );
  if (result.throughput.length === 0 && result.rpo.length === 0) throw new Error(result.failures.join("; "));
  return result;
}

const mark = (ok: boolean) => (ok ? "yes" : "no");

function throughputRows(r: ReplicationBenchResult): Cell[][] {
  return r.throughput.map((t) => {
    const target =
      (t.storage === "directory"
        ? `≥ ${TARGET_DIRECTORY_MBPS} MB/s: ${mark(t.mbps >= TARGET_DIRECTORY_MBPS)}`
        : `≥ ${TARGET_RATIO}×: ${mark(t.mbps >= TARGET_RATIO * (t.rawMBps ?? Number.POSITIVE_INFINITY))}`) +
      `; CPU ≤ ${TARGET_CPU_MS_PER_MB}: ${mark(t.cpu.srlab <= TARGET_CPU_MS_PER_MB)}`;
    const spread = t.spread
      ? ` (${Object.entries(t.spread).map(([ps, n]) => `${ps}: ${n} machines, ${fixed(t.perProcessServer?.[ps], 1)} ms/MB`).join("; ")})`
      : "";
    return [
      `${t.machines}${t.processServers > 1 ? ` on ${t.processServers} PS${spread}` : ""}`,
      t.storage,
      fixed(t.run.bytes / MB, 0),
      fixed(t.run.writeSeconds, 1),
      fixed(t.run.seconds, 1),
      fixed(t.mbps, 1),
      fixed(t.rawMBps, 1),
      ratio(t.mbps, t.rawMBps),
      formatCpuPerMB(t.cpu),
      target + (t.run.bitmapMode ? " (bitmap mode seen)" : ""),
    ];
  });
}

const THROUGHPUT_HEAD = [
  "machines",
  "storage",
  "MB written",
  "write s",
  "caught up s",
  "MB/s",
  "raw Azurite MB/s",
  "ratio",
  "CPU ms/MB agent + PS = srlab (Azurite, others)",
  "target",
];
const RPO_HEAD = ["machines", "churn MB/s", "samples", "every ms", "p50 s", "p95 s", "p99 s", "max s", "caught up s", "target p99 ≤ 1 s"];

function rpoRows(r: ReplicationBenchResult): Cell[][] {
  return r.rpo.map((x) => [
    x.machines,
    fixed(x.churnMBps, 1),
    x.lag.samples,
    fixed(x.run.sampleIntervalMs, 0),
    fixed(x.lag.p50, 2),
    fixed(x.lag.p95, 2),
    fixed(x.lag.p99, 2),
    fixed(x.lag.max, 2),
    fixed(x.run.seconds, 1),
    mark(x.lag.p99 <= TARGET_RPO_P99) + (x.run.bitmapMode ? " (bitmap mode seen)" : ""),
  ]);
}

function statusNote(r: ReplicationBenchResult): string[] {
  const s = r.status;
  if (!s) return [];
  return [
    `srlab status --json with ${s.machines} machines: one status call (list components and machines, build the document) ${fixed(s.callP50, 0)} ms p50, ` +
      `${fixed(s.callMax, 0)} ms max of 20 (target ≤ ${TARGET_STATUS_MS} ms: ${mark(s.callP50 <= TARGET_STATUS_MS)}); the CLI as a new process ${fixed(s.cliP50, 0)} ms p50 of 5, Node's start-up included.`,
  ];
}

function notes(r: ReplicationBenchResult): string[] {
  return [
    ...statusNote(r),
    ...r.failures.map((f) => `FAILED ${f}`),
    `Throughput: random-profile workload on every machine at once, ${(r.plan.burstBytes / MiB).toFixed(0)} MiB in all offered at up to ${(BURST_RATE / MB).toFixed(0)} MB/s, ` +
      "MB/s = bytes written / time from start until every machine is caught up (uploaded = received, nothing pending). " +
      "Raw = the same number of bytes uploaded as 8 MiB block blobs, 4 at a time, to the same Azurite right after. " +
      "CPU = user + system seconds from /proc/PID/stat of every daemon process (and its children; not its keeper) over the same interval, per MB written " +
      "(it barely moves when the machine is shared; MB/s does); PS = the on-premises process servers; others = configuration server, master target and " +
      "the Azure-side process server, which stand by during forward replication. A reading that cannot be trusted prints FAILED with the reason.",
    `RPO: ${(CHURN_RATE / MB).toFixed(0)} MB/s of churn in all for ${r.plan.rpoSeconds} s; rpoSeconds of every machine sampled every 250 ms until caught up. ` +
      "Labs use 64 MiB disks, time unit 1 s, 250 ms heartbeats and a raised agent memory budget (so bursts stay in data mode).",
  ];
}

export function formatReplication(r: ReplicationBenchResult): string {
  return [
    "Replication throughput",
    textTable(THROUGHPUT_HEAD, throughputRows(r)),
    "",
    `RPO lag at ${(CHURN_RATE / MB).toFixed(0)} MB/s of churn`,
    textTable(RPO_HEAD, rpoRows(r)),
    "",
    ...notes(r),
  ].join("\n");
}

export function replicationMarkdown(r: ReplicationBenchResult): string {
  return [
    "#### Replication throughput",
    "",
    markdownTable(THROUGHPUT_HEAD, throughputRows(r)),
    "",
    `#### RPO lag at ${(CHURN_RATE / MB).toFixed(0)} MB/s of churn`,
    "",
    markdownTable(RPO_HEAD, rpoRows(r)),
    "",
    ...notes(r).map((n) => `${n}\n`),
  ]
    .join("\n")
    .trimEnd();
}
