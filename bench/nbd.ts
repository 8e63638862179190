// fio through a protected machine's NBD export (capture + replication behind it) against fio
// through `nbdkit file` on the same image: what srlab's write path costs a real NBD client.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pollUntil } from "../common/async/index.js";
import { BenchLab } from "./bench-lab.js";
import { type CpuPerMB, cpuDelta, cpuPerMB, formatCpuPerMB } from "./cpu.js";
import { type FioJob, type FioResult, fioHasNbd, hasTool, runFio } from "./fio.js";
import { runCommand } from "./run-command.js";
import { type Cell, fixed, markdownTable, ratio, textTable } from "./table.js";

const MiB = 1024 * 1024;

export interface NbdBenchOptions {
  quick: boolean;
  say: (line: string) => void;
}

export interface NbdRow {
  job: FioJob;
  label: string;
  agent: FioResult;
  nbdkit: FioResult;
  /** Agent and process-server CPU from fio's start until the writes are uploaded. */
  cpu: CpuPerMB;
}

export type NbdBenchResult = { skipped: string } | { rows: NbdRow[] };

function jobs(quick: boolean): Array<{ label: string; job: FioJob }> {
  return [
    // The README's example: one request at a time, so this is the export's per-request latency.
    { label: "4k randwrite, iodepth 1", job: { name: "randwrite-4k-qd1", rw: "randwrite", blockSize: "4k", iodepth: 1, size: quick ? "8m" : "64m" } },
    { label: "4k randwrite, iodepth 32", job: { name: "randwrite-4k", rw: "randwrite", blockSize: "4k", iodepth: 32, size: quick ? "32m" : "256m" } },
    { label: "1M sequential write, iodepth 8", job: { name: "write-1m", rw: "write", blockSize: "1m", iodepth: 8, size: quick ? "64m" : "512m" } },
  ];
}

export function nbdSkipReason(): string | undefined {
  for (const tool of ["fio", "nbdkit"]) if (!hasTool(tool)) return `${tool} is not installed (apt-get install fio nbdkit)`;
  if (!fioHasNbd()) return "this fio has no nbd ioengine (it needs a build with libnbd)";
  return undefined;
}

export async function runNbdBench(o: NbdBenchOptions): Promise<NbdBenchResult> {
  const skipped = nbdSkipReason();
  if (skipped) return { skipped };
  const say = (line: string) => o.say(`nbd: ${line}`);
  const plan = jobs(o.quick);
  const lab = await BenchLab.start({
    machines: 1,
    storage: "azurite",
    diskSizeBytes: 512 * MiB,
    // Everything fio writes stays in data mode, as it would for a machine with normal churn.
    captureBudgetBytes: 1024 * MiB,
    heartbeatMs: 2000,
    say,
  });
  try {
    await lab.protectAll();
    const disk = (await lab.status())[0]!.disks[0]!;
    await lab.waitCaughtUp(600_000);
    // The baseline gets the image as the agent's runs find it: a fresh sparse file, so both write
    // into the same holes (a first write into a hole allocates a block and costs about twice an
    // overwrite). And both start without another phase's dirty pages still being written back.
    const baseline = join(lab.dir, "nbdkit-baseline.img");
    await runCommand("cp", ["--sparse=always", disk.path, baseline]);
    await runCommand("sync", []);
    const agent: FioResult[] = [];
    const cpu: CpuPerMB[] = [];
    for (const { label, job } of plan) {
      await lab.waitCaughtUp(600_000);
      const before = lab.cpu();
      const result = await runFio(disk.nbdUnix, job);
      await lab.waitCaughtUp(600_000);
      agent.push(result);
      cpu.push(cpuPerMB(cpuDelta(before, lab.cpu()), result.bytes));
      say(`agent export, ${label}: ${fixed(result.iops, 0)} IOPS, CPU ms/MB ${formatCpuPerMB(cpu.at(-1))}`);
    }
    // The baseline runs alone on the machine: nothing replicating in the background, and nothing
    // the lab wrote still waiting for writeback (it throttled nbdkit's writes to a quarter).
    await lab.down();
    await runCommand("sync", []);
    const nbdkit = await withNbdkit(baseline, lab.dir, async (uri) => {
      const out: FioResult[] = [];
      for (const { label, job } of plan) {
        out.push(await runFio(uri, job));
        say(`nbdkit file, ${label}: ${fixed(out.at(-1)!.iops, 0)} IOPS`);
      }
      return out;
    });
    return { rows: plan.map(({ label, job }, i) => ({ label, job, agent: agent[i]!, nbdkit: nbdkit[i]!, cpu: cpu[i]! })) };
  } finally {
    await lab.stop();
  }
}

async function withNbdkit<T>(image: string, dir: string, fn: (uri: string) => Promise<T>): Promise<T> {
  const socket = join(dir, "nbdkit.sock");
  const child: ChildProcess = spawn("nbdkit", ["--foreground", "--exit-with-parent", "--unix", socket, "file", image], { stdio: "ignore" });
  try {
    const opened = () => {
      if (child.exitCode !== null) throw new Error(`nbdkit exited before opening ${socket}`);
      return existsSync(socket);
    };
    await pollUntil(`nbdkit to open ${socket}`, opened, { timeoutMs: 5_000, intervalMs: 50 });
    return await fn(`nbd+unix:///?socket=${socket}`);
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  }
}

const HEAD = ["fio job", "agent IOPS", "agent MB/s", "agent lat µs", "nbdkit IOPS", "nbdkit MB/s", "nbdkit lat µs", "ratio", "CPU ms/MB agent + PS = srlab (Azurite, others)", "target ≥ 0.5×"];

function rows(r: { rows: NbdRow[] }): Cell[][] {
  return r.rows.map((x) => [
    `${x.label}, ${x.job.size}`,
    fixed(x.agent.iops, 0),
    fixed(x.agent.bytesPerSecond / 1e6, 1),
    fixed(x.agent.clatMeanUs, 0),
    fixed(x.nbdkit.iops, 0),
    fixed(x.nbdkit.bytesPerSecond / 1e6, 1),
    fixed(x.nbdkit.clatMeanUs, 0),
    ratio(x.agent.bytesPerSecond, x.nbdkit.bytesPerSecond),
    formatCpuPerMB(x.cpu),
    x.agent.bytesPerSecond >= 0.5 * x.nbdkit.bytesPerSecond ? "yes" : "no",
  ]);
}

const NOTE =
  "fio --ioengine=nbd over a Unix socket: the agent's export of a protected machine (writes captured and replicated " +
  "while fio runs) against nbdkit file on a copy of the image as the agent's runs found it (a fresh sparse file: both " +
  "write into the same holes), with the lab stopped; both start after sync. lat = mean completion latency. " +
  "CPU = agent + process server (and Azurite) from /proc/PID/stat, from fio's start until the writes are uploaded, per MB fio wrote.";

export function formatNbd(r: NbdBenchResult): string {
  if ("skipped" in r) return `NBD export: skipped: ${r.skipped}`;
  return ["NBD export vs nbdkit", textTable(HEAD, rows(r)), "", NOTE].join("\n");
}

export function nbdMarkdown(r: NbdBenchResult): string {
  if ("skipped" in r) return `#### NBD export vs nbdkit\n\nSkipped: ${r.skipped}.`;
  return ["#### NBD export vs nbdkit", "", markdownTable(HEAD, rows(r)), "", NOTE].join("\n");
}
