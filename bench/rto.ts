// RTO of a test failover to `latest-processed` (the newest point as it is) against `latest` (that
// point plus a replay of every uploaded write after it), with 0, 64 and 256 MiB written after the
// point. latest-processed in the same round is the reference: it copies the same snapshot.
import { randomBytes } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { recoveryPointSelector } from "../cli/commands/failover.js";
import { jobDocument, waitForJob } from "../cli/commands/jobs.js";
import { NbdClient, type NbdTarget } from "../common/nbd/index.js";
import { type ReplicationPolicy, SiteLocation } from "../proto/index.js";
import { BenchLab } from "./bench-lab.js";
import { type Cell, fixed, markdownTable, ratio, textTable } from "./table.js";
import { seededFloats } from "../common/random/index.js";

const MiB = 1024 * 1024;
const MACHINE = "machine-1";
const NETWORK = "bench-isolated";
const POLICY = "bench-rto";

export interface RtoBenchOptions {
  quick: boolean;
  say: (line: string) => void;
}

interface Plan {
  diskBytes: number;
  baseBytes: number;
  pendingMiB: number[];
}

export interface FailoverSample {
  rtoSeconds: number;
  sequence: number;
  description: string;
}

export interface RtoRow {
  pendingMiB: number;
  /** Writes after the point, i.e. what `latest` replays. */
  pendingWrites: number;
  processed: FailoverSample;
  latest: FailoverSample;
}

export interface RtoBenchResult {
  plan: Plan;
  rows: RtoRow[];
}

function plan(quick: boolean): Plan {
  return quick
    ? { diskBytes: 256 * MiB, baseBytes: 64 * MiB, pendingMiB: [0, 16, 64] }
    : { diskBytes: 1024 * MiB, baseBytes: 256 * MiB, pendingMiB: [0, 64, 256] };
}

/**
 * Policy for a bench lab: crash-consistent points rare enough that none lands inside a measured
 * phase, and a resync window only at midnight on 1 January, so only the bench starts resyncs.
 */
export async function createBenchPolicy(lab: BenchLab, name: string): Promise<void> {
  const policy: ReplicationPolicy = {
    name,
    rpoThresholdSeconds: 900,
    recoveryPointRetentionSeconds: 7200,
    crashConsistentFrequencySeconds: 3600,
    appConsistentFrequencySeconds: 0,
    resyncSchedule: "0 0 0 1 1 *",
    failback: false,
  };
  await lab.client.call(lab.client.client.createPolicy, { policy });
}

export async function protectWith(lab: BenchLab, policyName: string): Promise<void> {
  const c = lab.client;
  const { job } = await c.call(c.client.enableProtection, { machine: MACHINE, policyName });
  await waitForJob(c, job!.jobId, false);
}

/**
 * Writes random data straight into the image file, in whole blocks chosen at random, before the
 * machine is protected: initial replication copies it, and nothing has to go through NBD.
 */
export function fillImage(path: string, diskBytes: number, fillBytes: number, blockBytes: number, seed: number): number {
  const blocks = Math.floor(diskBytes / blockBytes);
  const want = Math.min(blocks, Math.round(fillBytes / blockBytes));
  const rnd = seededFloats(seed);
  // Partial Fisher-Yates: the first `want` entries are a uniform sample of distinct blocks.
  const order = Array.from({ length: blocks }, (_, i) => i);
  for (let i = 0; i < want; i++) {
    const j = i + Math.floor(rnd() * (blocks - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const fd = openSync(path, "r+");
  try {
    for (const b of order.slice(0, want)) writeSync(fd, randomBytes(blockBytes), 0, blockBytes, b * blockBytes);
  } finally {
    closeSync(fd);
  }
  return want * blockBytes;
}

/** nbd+unix:///EXPORT?socket=PATH or nbd://host:port/EXPORT → what NbdClient.connect takes. */
function nbdTarget(uri: string): { target: NbdTarget; exportName: string } {
  const u = new URL(uri);
  const exportName = decodeURIComponent(u.pathname.slice(1));
  if (u.protocol === "nbd+unix:") return { target: { socketPath: u.searchParams.get("socket")! }, exportName };
  return { target: { host: u.hostname, port: Number(u.port) }, exportName };
}

const WRITE_BYTES = 256 * 1024;
const IN_FLIGHT = 8;

/** Writes `bytes` through the machine's NBD export in 256 KiB writes at random aligned offsets. */
async function writeThroughNbd(uri: string, diskBytes: number, bytes: number, seed: number): Promise<number> {
  const { target, exportName } = nbdTarget(uri);
  const nbd = await NbdClient.connect(target, exportName);
  const rnd = seededFloats(seed);
  const slots = diskBytes / WRITE_BYTES;
  let writes = 0;
  try {
    const total = Math.ceil(bytes / WRITE_BYTES);
    let next = 0;
    // A few writes in flight, as a real client would have; each one is one sequence number.
    const worker = async () => {
      while (next < total) {
        next++;
        await nbd.write(Math.floor(rnd() * slots) * WRITE_BYTES, randomBytes(WRITE_BYTES));
        writes++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    await nbd.flush();
  } finally {
    await nbd.close();
  }
  return writes;
}

async function testFailover(lab: BenchLab, point: "latest" | "latest-processed"): Promise<FailoverSample> {
  const c = lab.client;
  const { job } = await c.call(c.client.failover, {
    machine: MACHINE,
    point: recoveryPointSelector({ point }),
    test: true,
    shutdownSource: false,
    network: NETWORK,
  });
  const done = jobDocument(await waitForJob(c, job!.jobId, false));
  const r = done.result as { rtoSeconds: number; sequence: number; description: string };
  // Only one test failover may exist at a time; cleaning up also frees the copied page blobs.
  const { job: cleanup } = await c.call(c.client.cleanupTestFailover, { machine: MACHINE });
  await waitForJob(c, cleanup!.jobId, false);
  return { rtoSeconds: r.rtoSeconds, sequence: r.sequence, description: r.description };
}

async function tag(lab: BenchLab, name: string): Promise<number> {
  const c = lab.client;
  const { job } = await c.call(c.client.createAppConsistentPoint, { machine: MACHINE, tagName: name });
  const done = jobDocument(await waitForJob(c, job!.jobId, false));
  return Number((done.result as { sequence?: number }).sequence ?? 0);
}

export async function runRtoBench(o: RtoBenchOptions): Promise<RtoBenchResult> {
  const p = plan(o.quick);
  const say = (line: string) => o.say(`rto: ${line}`);
  const maxPending = Math.max(...p.pendingMiB) * MiB;
  const lab = await BenchLab.start({
    machines: 1,
    storage: "azurite",
    diskSizeBytes: p.diskBytes,
    // The largest pending phase stays in data mode (no bitmap coalescing of the writes to replay).
    captureBudgetBytes: Math.max(256 * MiB, 2 * maxPending),
    heartbeatMs: 500,
    say,
  });
  try {
    const c = lab.client;
    await createBenchPolicy(lab, POLICY);
    await c.call(c.client.createNetwork, {
      network: { name: NETWORK, addressSpaces: ["192.168.0.0/16"], subnets: [], circuit: "", location: SiteLocation.SITE_LOCATION_AZURE },
    });
    const disk = (await lab.status())[0]!.disks[0]!;
    const filled = fillImage(disk.path, p.diskBytes, p.baseBytes, MiB, 1);
    say(`base: ${filled / MiB} MiB of random 1 MiB blocks written into the ${p.diskBytes / MiB} MiB image`);
    const t0 = Date.now();
    await protectWith(lab, POLICY);
    await lab.waitCaughtUp(600_000);
    say(`protected and caught up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const rows: RtoRow[] = [];
    for (const [i, pendingMiB] of p.pendingMiB.entries()) {
      // A fresh point per round, so exactly this round's writes lie between it and latest.
      const pointSequence = await tag(lab, `bench-rto-${i}`);
      const writes = pendingMiB > 0 ? await writeThroughNbd(disk.nbdUnix || disk.nbd, p.diskBytes, pendingMiB * MiB, 100 + i) : 0;
      const caught = await lab.waitCaughtUp(600_000);
      say(`${pendingMiB} MiB after point at sequence ${pointSequence}: ${writes} writes uploaded (RPO 0, uploaded sequence ${caught[0]!.uploadedSequence})`);
      // ABBA order, averaged: neither target always runs first on a warm or a cold cache.
      const a1 = await testFailover(lab, "latest-processed");
      const b1 = await testFailover(lab, "latest");
      const b2 = await testFailover(lab, "latest");
      const a2 = await testFailover(lab, "latest-processed");
      const processed = { ...a1, rtoSeconds: (a1.rtoSeconds + a2.rtoSeconds) / 2 };
      const latest = { ...b1, rtoSeconds: (b1.rtoSeconds + b2.rtoSeconds) / 2 };
      if (processed.sequence !== pointSequence) say(`note: latest-processed used sequence ${processed.sequence}, not the tag's ${pointSequence}`);
      say(`${pendingMiB} MiB pending: RTO latest-processed ${processed.rtoSeconds.toFixed(2)} s, latest ${latest.rtoSeconds.toFixed(2)} s`);
      rows.push({ pendingMiB, pendingWrites: latest.sequence - processed.sequence, processed, latest });
    }
    return { plan: p, rows };
  } finally {
    await lab.stop();
  }
}

const HEAD = ["pending MiB", "writes replayed", "RTO latest-processed s", "RTO latest s", "latest / latest-processed"];

function rows(r: RtoBenchResult): Cell[][] {
  return r.rows.map((x) => [x.pendingMiB, x.pendingWrites, fixed(x.processed.rtoSeconds, 2), fixed(x.latest.rtoSeconds, 2), ratio(x.latest.rtoSeconds, x.processed.rtoSeconds)]);
}

function notes(r: RtoBenchResult): string[] {
  const p = r.plan;
  return [
    `Test failover of one machine with a ${p.diskBytes / MiB} MiB disk (${p.baseBytes / MiB} MiB of random data) on Azurite, time unit 1 s. ` +
      "Each round tags an app-consistent point, writes the pending MiB through the NBD export (256 KiB random writes), waits for RPO 0, " +
      "then fails over to latest-processed (copy of the point's snapshot) and to latest (the same copy plus a replay of the writes after it), " +
      "twice each in the order A B B A, cleaning up after each. RTO = the mean of the jobs' rtoSeconds (request to disks ready). " +
      "The policy takes crash-consistent points hourly, so none lands in a round.",
  ];
}

export function formatRto(r: RtoBenchResult): string {
  return [`RTO of a test failover, ${r.plan.diskBytes / MiB} MiB disk`, textTable(HEAD, rows(r)), "", ...notes(r)].join("\n");
}

export function rtoMarkdown(r: RtoBenchResult): string {
  return [`#### RTO: latest-processed vs latest, ${r.plan.diskBytes / MiB} MiB disk`, "", markdownTable(HEAD, rows(r)), "", ...notes(r)].join("\n");
}
