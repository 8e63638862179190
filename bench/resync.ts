// Checksum resync of a disk whose image changed behind the agent's back (1% in scattered 4–64 KiB
// pieces while the agent was down), beside `rsync --inplace --no-whole-file` bringing a copy of the
// image from before the changes up to date, on the same pair in the same run.
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pollUntil, sleep } from "../common/async/index.js";
import { fileURLToPath } from "node:url";
import { status as grpcStatus } from "@grpc/grpc-js";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { jobDocument, waitForJob } from "../cli/commands/jobs.js";
import { LabLayout } from "../cli/lab/index.js";
import { isAlive, stopProcess } from "../cli/lab/processes.js";
import { configServerOptions } from "../config-server/options.js";
import { BenchLab } from "./bench-lab.js";
import { hasTool } from "./fio.js";
import { runCommand } from "./run-command.js";
import { seededFloats } from "../common/random/index.js";
import { createBenchPolicy, fillImage, protectWith } from "./rto.js";
import { type Cell, fixed, markdownTable, ratio, textTable } from "./table.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const MACHINE = "machine-1";
const POLICY = "bench-resync";
const CHANGED_SHARE = 0.01;
const HEARTBEAT_MS = 500;
const CLI_MAIN = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface ResyncBenchOptions {
  quick: boolean;
  say: (line: string) => void;
}

export interface ResyncRow {
  diskBytes: number;
  /** The configuration server's syncBlockBytes for this round. */
  blockBytes: number;
  changedBytes: number;
  pieces: number;
  /** Blocks of this size that some piece touched: the fewest a block-granular resync can send. */
  blocksTouched: number;
  srlab: { seconds: number; blocksCompared: number; blocksSent: number; bytesSent: number; jobBytesSent: number };
  rsync: { seconds: number; literalBytes: number; totalSent: number; totalReceived: number };
}

export type ResyncBenchResult = { skipped: string } | { rows: ResyncRow[]; failures: string[] };

interface Piece {
  offset: number;
  length: number;
}

/** 1% of the disk in pieces of 4–64 KiB (4 KiB multiples) at random 4 KiB-aligned offsets. */
function scatter(diskBytes: number, seed: number): Piece[] {
  const rnd = seededFloats(seed);
  const pieces: Piece[] = [];
  let total = 0;
  while (total < diskBytes * CHANGED_SHARE) {
    const length = (1 + Math.floor(rnd() * 16)) * 4 * KiB;
    const offset = Math.floor(rnd() * ((diskBytes - length) / (4 * KiB))) * 4 * KiB;
    pieces.push({ offset, length });
    total += length;
  }
  return pieces;
}

function touchedBlocks(pieces: Piece[], blockBytes: number): number {
  const blocks = new Set<number>();
  for (const p of pieces) {
    for (let b = Math.floor(p.offset / blockBytes); b <= Math.floor((p.offset + p.length - 1) / blockBytes); b++) blocks.add(b);
  }
  return blocks.size;
}

function writePieces(path: string, pieces: Piece[]): void {
  const fd = openSync(path, "r+");
  try {
    for (const p of pieces) writeSync(fd, randomBytes(p.length), 0, p.length, p.offset);
  } finally {
    closeSync(fd);
  }
}

/** "Literal data: 1,234 bytes" → 1234 from rsync --stats. */
function statsNumber(stats: string, label: string): number {
  const m = new RegExp(`^${label}: ([\\d,]+)`, "m").exec(stats);
  if (!m) throw new Error(`rsync --stats printed no "${label}"`);
  return Number(m[1]!.replace(/,/g, ""));
}

function readSyncBlockBytes(configFile: string): number {
  const doc = (parseYaml(readFileSync(configFile, "utf8")) ?? {}) as Record<string, unknown>;
  // The schema supplies the configuration server's default when the file does not set one.
  return configServerOptions.shape.syncBlockBytes.parse(doc.syncBlockBytes);
}

function writeSyncBlockBytes(configFile: string, blockBytes: number): void {
  const doc = (parseYaml(readFileSync(configFile, "utf8")) ?? {}) as Record<string, unknown>;
  writeFileSync(configFile, stringifyYaml({ ...doc, syncBlockBytes: blockBytes }));
}

async function killAndWait(pid: number): Promise<void> {
  process.kill(pid, "SIGKILL");
  await pollUntil("the killed agent to exit", () => !isAlive(pid), { intervalMs: 50 });
}

/** Starts a resync once the restarted agent's command stream is back, then follows the job. */
async function timedResync(lab: BenchLab): Promise<{ seconds: number; doc: ReturnType<typeof jobDocument> }> {
  const c = lab.client;
  const until = Date.now() + 120_000;
  for (;;) {
    const requested = Date.now();
    try {
      const { job } = await c.call(c.client.startResync, { machine: MACHINE });
      const doc = jobDocument(await waitForJob(c, job!.jobId, false));
      // The job's own end time: the 250 ms polling of waitForJob does not count.
      return { seconds: (new Date(doc.endTime!).getTime() - requested) / 1000, doc };
    } catch (err) {
      if ((err as { code?: number }).code !== grpcStatus.UNAVAILABLE || Date.now() > until) throw err;
      await sleep(250);
    }
  }
}

async function round(lab: BenchLab, diskBytes: number, blockBytes: number, seed: number, say: (l: string) => void): Promise<ResyncRow> {
  const layout = new LabLayout(lab.dir);
  const components = layout.read().components;
  const agent = components.find((x) => x.name === MACHINE)!;
  const cs = components.find((x) => x.role === "config-server")!;
  const image = (await lab.status())[0]!.disks[0]!.path;

  // The agent dies uncleanly, so it cannot know what changes next: only a resync can find them.
  await killAndWait(agent.pid);
  if (readSyncBlockBytes(cs.configFile!) !== blockBytes) {
    await stopProcess(cs.pid);
    writeSyncBlockBytes(cs.configFile!, blockBytes);
  }
  const before = join(lab.dir, "before.img");
  await runCommand("cp", ["--sparse=always", image, before]);
  const pieces = scatter(diskBytes, seed);
  writePieces(image, pieces);
  const changedBytes = pieces.reduce((n, p) => n + p.length, 0);
  // Same heartbeat as the lab started with; `up` resumes only what is not running.
  await runCommand(process.execPath, [CLI_MAIN, "up", "--detach", "--dir", lab.dir], { ...process.env, SRLAB_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) });
  if (readSyncBlockBytes(cs.configFile!) !== blockBytes) throw new Error(`config server block size is not ${blockBytes}`);

  const resync = await timedResync(lab);
  const r = resync.doc.result as { blocksCompared?: number; blocksSent?: number; bytesSent?: number };
  const srlab = {
    seconds: resync.seconds,
    blocksCompared: r.blocksCompared ?? 0,
    blocksSent: r.blocksSent ?? 0,
    bytesSent: r.bytesSent ?? 0,
    jobBytesSent: resync.doc.bytesSent,
  };
  say(`${blockBytes / KiB} KiB blocks: resync sent ${srlab.blocksSent} blocks, ${fixed(srlab.bytesSent / MiB, 1)} MiB in ${srlab.seconds.toFixed(1)} s`);

  // --ignore-times: a copy made within the same second can pass rsync's size+mtime quick check.
  const t0 = performance.now();
  const stats = await runCommand("rsync", ["--inplace", "--no-whole-file", "--ignore-times", "--stats", image, before]);
  const rsync = {
    seconds: (performance.now() - t0) / 1000,
    literalBytes: statsNumber(stats, "Literal data"),
    totalSent: statsNumber(stats, "Total bytes sent"),
    totalReceived: statsNumber(stats, "Total bytes received"),
  };
  rmSync(before, { force: true });
  say(`${blockBytes / KiB} KiB blocks: rsync sent ${fixed(rsync.totalSent / MiB, 1)} MiB (${fixed(rsync.literalBytes / MiB, 1)} MiB literal) in ${rsync.seconds.toFixed(1)} s`);
  return { diskBytes, blockBytes, changedBytes, pieces: pieces.length, blocksTouched: touchedBlocks(pieces, blockBytes), srlab, rsync };
}

export async function runResyncBench(o: ResyncBenchOptions): Promise<ResyncBenchResult> {
  if (!hasTool("rsync")) return { skipped: "rsync is not installed (apt-get install rsync)" };
  const say = (line: string) => o.say(`resync: ${line}`);
  const rows: ResyncRow[] = [];
  const failures: string[] = [];
  for (const diskBytes of o.quick ? [512 * MiB] : [512 * MiB, 2048 * MiB]) {
    try {
      rows.push(await resyncDisk(diskBytes, say));
    } catch (err) {
      failures.push(`${diskBytes / MiB} MiB: ${(err as Error).message}`);
    }
  }
  if (rows.length === 0) throw new Error(failures.join("; "));
  return { rows, failures };
}

async function resyncDisk(diskBytes: number, say: (l: string) => void): Promise<ResyncRow> {
  const lab = await BenchLab.start({ machines: 1, storage: "azurite", diskSizeBytes: diskBytes, captureBudgetBytes: 256 * MiB, heartbeatMs: HEARTBEAT_MS, say });
  try {
    await createBenchPolicy(lab, POLICY);
    const image = (await lab.status())[0]!.disks[0]!.path;
    const filled = fillImage(image, diskBytes, diskBytes / 2, MiB, 7);
    const t0 = Date.now();
    await protectWith(lab, POLICY);
    await lab.waitCaughtUp(900_000);
    say(`${filled / MiB} of ${diskBytes / MiB} MiB random, protected and caught up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const csConfig = new LabLayout(lab.dir).read().components.find((x) => x.role === "config-server")!.configFile!;
    // The configuration server's own block size (its default unless its config sets one).
    return await round(lab, diskBytes, readSyncBlockBytes(csConfig), 1000, say);
  } finally {
    await lab.stop();
  }
}

const HEAD = [
  "disk MiB",
  "block KiB",
  "changed MiB",
  "blocks touched",
  "srlab blocks sent",
  "srlab MiB sent",
  "rsync MiB sent",
  "bytes srlab/rsync",
  "srlab s",
  "rsync s",
  "time srlab/rsync",
  "target",
];

function rows(r: { rows: ResyncRow[] }): Cell[][] {
  return r.rows.map((x) => [
    fixed(x.diskBytes / MiB, 0),
    fixed(x.blockBytes / KiB, 0),
    fixed(x.changedBytes / MiB, 1),
    x.blocksTouched,
    x.srlab.blocksSent,
    fixed(x.srlab.bytesSent / MiB, 1),
    fixed(x.rsync.totalSent / MiB, 1),
    ratio(x.srlab.bytesSent, x.rsync.totalSent),
    fixed(x.srlab.seconds, 1),
    fixed(x.rsync.seconds, 1),
    ratio(x.srlab.seconds, x.rsync.seconds),
    `bytes ≤ 0.7×: ${x.srlab.bytesSent <= 0.7 * x.rsync.totalSent ? "yes" : "no"}, time ≤ 1×: ${x.srlab.seconds <= x.rsync.seconds ? "yes" : "no"}`,
  ]);
}

function notes(r: { rows: ResyncRow[]; failures: string[] }): string[] {
  const detail = r.rows.map(
    (x) =>
      `${x.diskBytes / MiB} MiB disk, ${x.blockBytes / KiB} KiB blocks: ${x.pieces} pieces, srlab compared ${x.srlab.blocksCompared} blocks (job bytesSent ${x.srlab.jobBytesSent}); ` +
      `rsync literal ${fixed(x.rsync.literalBytes / MiB, 1)} MiB, received ${fixed(x.rsync.totalReceived / MiB, 2)} MiB of checksums.`,
  );
  return [
    ...r.failures.map((f) => `FAILED ${f}`),
    `One machine, its disk half filled with random 1 MiB blocks, Azurite, protected and caught up. Each round SIGKILLs the agent, ` +
      `copies the image (cp --sparse=always), writes ${CHANGED_SHARE * 100}% of the disk in random 4–64 KiB pieces straight into the image, restarts with srlab up --detach ` +
      "and times srlab resync from the request to the job's end (including waiting for the replica to process it); then times " +
      "`rsync --inplace --no-whole-file --ignore-times --stats` from the changed image onto the copy. srlab MiB = the job's result.bytesSent (block payload); " +
      "rsync MiB = Total bytes sent. Block = the configuration server's syncBlockBytes. " +
      "Target: at most 0.7× rsync's bytes and no slower.",
    ...detail,
  ];
}

export function formatResync(r: ResyncBenchResult): string {
  if ("skipped" in r) return `skipped: ${r.skipped}`;
  return [`Resync with ${CHANGED_SHARE * 100}% scattered changes, beside rsync`, textTable(HEAD, rows(r)), "", ...notes(r)].join("\n");
}

export function resyncMarkdown(r: ResyncBenchResult): string {
  if ("skipped" in r) return `#### Resync vs rsync\n\nSkipped: ${r.skipped}`;
  return [`#### Resync vs rsync, ${CHANGED_SHARE * 100}% scattered changes`, "", markdownTable(HEAD, rows(r)), "", ...notes(r).map((n) => `${n}\n`)]
    .join("\n")
    .trimEnd();
}
