// `npm run chaos -- --trials N [--seed S] [--disk-size 32MiB] [--keep]`: faults at random moments
// during fio writes through a protected machine's NBD export — SIGKILL of any daemon (agent,
// process server, configuration server, master target, Azurite) or a storage outage (Azurite
// frozen) — then the lab must converge (resyncing where required) to a replica equal to the
// source. Prints a table; exits non-zero on any mismatch or a lab that does not converge.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { AdminClient } from "../cli/admin-client.js";
import { waitForJob } from "../cli/commands/jobs.js";
import { statusDocument } from "../cli/commands/status.js";
import { LabLayout, labDown, labUp, readKeeperState } from "../cli/lab/index.js";
import { hashDisk, hashImageFile } from "../common/blockhash/index.js";
import { replicaBlobName } from "../common/storage-layout/index.js";
import { createBlobStore } from "../common/storage/index.js";
import { parseSize } from "../common/units/index.js";
import { Prng } from "../common/random/index.js";
import { fioHasNbd, hasTool } from "./fio.js";
import { markdownTable, textTable } from "./table.js";

const FAULTS = ["agent", "process-server", "config-server", "master-target", "azurite", "storage-outage"] as const;
type Fault = (typeof FAULTS)[number];
const DAEMON_OF: Record<Exclude<Fault, "storage-outage">, string> = {
  agent: "machine-1",
  "process-server": "process-server-1",
  "config-server": "config-server",
  "master-target": "master-target",
  azurite: "azurite",
};

const FIO_SECONDS = 8;
const CONVERGE_TIMEOUT_MS = 300_000;

interface Trial {
  fault: Fault;
  atSeconds: number;
  recovered: boolean;
  converged: boolean;
  match: boolean;
  worstRpoSeconds: number;
  convergeSeconds: number;
  resynced: boolean;
  note: string;
}

type Machine = ReturnType<typeof statusDocument>["machines"][number];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      trials: { type: "string", default: "10" },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
      "disk-size": { type: "string", default: "32MiB" },
      keep: { type: "boolean", default: false },
      markdown: { type: "boolean", default: false },
      // On a shared machine: start no new trial after this many minutes; the table reports those that ran.
      "max-minutes": { type: "string" },
    },
  });
  const trials = Number(values.trials);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(trials) || trials < 1) throw new Error(`--trials must be a whole number of at least 1, got "${values.trials}"`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number, got "${values.seed}"`);
  const startedAt = Date.now();
  const maxMs = values["max-minutes"] === undefined ? undefined : Number(values["max-minutes"]) * 60_000;
  if (maxMs !== undefined && !(maxMs > 0)) throw new Error(`--max-minutes must be a number above 0, got "${values["max-minutes"]}"`);
  const diskSizeBytes = parseSize(values["disk-size"]!);
  if (!hasTool("fio") || !fioHasNbd()) throw new Error("chaos needs fio built with the nbd engine (apt-get install fio)");

  const say = (line: string) => process.stderr.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), "srlab-chaos-"));
  say(`chaos: ${trials} trial(s), seed ${seed}, lab in ${dir}`);
  const rng = new Prng(seed);
  const results: Trial[] = [];
  let client: AdminClient | undefined;
  try {
    await labUp({ dir, machines: 1, disksPerMachine: 1, diskSizeBytes, processServers: 1, timeUnitSeconds: 1, storage: "azurite", onProgress: () => {} });
    client = AdminClient.forDir(dir);
    const c = client;
    await c.call(c.client.createPolicy, {
      policy: { ...(await defaultPolicy(c)), name: "chaos", resyncSchedule: "immediate", failback: false },
    });
    const { job } = await c.call(c.client.enableProtection, { machine: "machine-1", policyName: "chaos" });
    await waitForJob(c, job!.jobId, false);
    say("machine-1 protected with resync window immediate");
    for (let i = 0; i < trials; i++) {
      if (maxMs !== undefined && Date.now() - startedAt > maxMs) {
        say(`chaos: --max-minutes ${values["max-minutes"]} reached; ${i} of ${trials} trial(s) ran`);
        break;
      }
      const fault = FAULTS[rng.int(FAULTS.length)]!;
      const atSeconds = 1 + rng.float() * (FIO_SECONDS - 3);
      const t = await trial(dir, c, fault, atSeconds, rng.u32(), 3 + rng.int(8));
      results.push(t);
      say(
        `trial ${i + 1}/${trials}: ${fault} at ${atSeconds.toFixed(1)} s → ${t.match ? "replica = source" : t.converged ? "MISMATCH" : "DID NOT CONVERGE"}, converged in ${t.convergeSeconds.toFixed(1)} s, worst RPO ${t.worstRpoSeconds.toFixed(1)} s${t.resynced ? ", resynced" : ""}${t.note ? ` (${t.note})` : ""}`,
      );
    }
  } finally {
    client?.close();
    await labDown(dir).catch(() => undefined);
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }

  const count = (f: Fault) => results.filter((r) => r.fault === f).length;
  const converge = results.filter((r) => r.converged).map((r) => r.convergeSeconds).sort((a, b) => a - b);
  const head = ["trials", ...FAULTS.map((f) => `${f} faults`), "recoveries", "resyncs", "mismatches", "not converged", "worst RPO", "converge median / max"];
  const row = [
    results.length,
    ...FAULTS.map(count),
    results.filter((r) => r.recovered).length,
    results.filter((r) => r.resynced).length,
    results.filter((r) => r.converged && !r.match).length,
    results.filter((r) => !r.converged).length,
    `${Math.max(0, ...results.map((r) => r.worstRpoSeconds)).toFixed(1)} s`,
    converge.length ? `${converge[Math.floor(converge.length / 2)]!.toFixed(1)} / ${converge.at(-1)!.toFixed(1)} s` : "-",
  ];
  console.log(values.markdown ? markdownTable(head, [row]) : textTable(head, [row]));
  say(`chaos: ${results.length} trial(s), seed ${seed}, wall time ${((Date.now() - startedAt) / 60_000).toFixed(1)} min`);
  const bad = results.filter((r) => !r.match).length;
  if (bad > 0) {
    say(`chaos: ${bad} trial(s) ended without a byte-exact replica (seed ${seed})`);
    process.exit(1);
  }
}

async function defaultPolicy(c: AdminClient) {
  const { policies } = await c.call(c.client.listPolicies, {});
  const p = policies.find((x) => x.name === "default");
  if (!p) throw new Error("no default policy");
  return p;
}

async function machine(c: AdminClient): Promise<Machine> {
  const [{ components }, { machines }] = await Promise.all([c.call(c.client.listComponents, {}), c.call(c.client.listMachines, {})]);
  return statusDocument(c, components, machines).machines.find((m) => m.name === "machine-1")!;
}

function daemonPid(dir: string, name: string): number {
  return readKeeperState(new LabLayout(dir).supervisorFile(name))?.pid ?? 0;
}

function restarts(dir: string, name: string): number {
  return readKeeperState(new LabLayout(dir).supervisorFile(name))?.restarts ?? 0;
}

/** One trial: fio writes, one fault at `atSeconds`, then convergence and a fingerprint compare. */
async function trial(dir: string, c: AdminClient, fault: Fault, atSeconds: number, fioSeed: number, outageSeconds: number): Promise<Trial> {
  const start = await machine(c);
  const uri = start.disks[0]!.nbd;
  let worstRpo = 0;
  let resynced = false;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const m = await machine(c);
        worstRpo = Math.max(worstRpo, m.rpoSeconds);
        if (m.resyncRequired || m.state === "resyncing" || m.state === "resync-required") resynced = true;
      } catch {
        // the configuration server may be the daemon that was killed
      }
      await sleep(1_000);
    }
  })();

  const fio = runFio(uri, fioSeed);
  await sleep(atSeconds * 1000);
  const daemon = fault === "storage-outage" ? "azurite" : DAEMON_OF[fault];
  const before = restarts(dir, daemon);
  const pid = daemonPid(dir, daemon);
  let note = "";
  if (!pid) {
    note = `${daemon} was not running`;
  } else if (fault === "storage-outage") {
    // Frozen, not dead: connections hang and time out as in a real outage.
    process.kill(pid, "SIGSTOP");
    note = `storage frozen ${outageSeconds} s`;
    await sleep(outageSeconds * 1000);
    process.kill(pid, "SIGCONT");
  } else {
    process.kill(pid, "SIGKILL");
  }
  const fioOutcome = await fio;
  if (fioOutcome) note = note ? `${note}; ${fioOutcome}` : fioOutcome;

  const faultEnd = Date.now();
  let converged = false;
  let last: Machine | undefined;
  const until = faultEnd + CONVERGE_TIMEOUT_MS;
  while (Date.now() < until) {
    try {
      last = await machine(c);
      if (last.resyncRequired || last.state !== "protected") resynced ||= last.state !== "protected";
      if (last.state === "protected" && !last.resyncRequired && caughtUp(last) && daemonPid(dir, daemon) > 0) {
        converged = true;
        break;
      }
    } catch {
      // a daemon is still coming back
    }
    await sleep(1_000);
  }
  const convergeSeconds = (Date.now() - faultEnd) / 1000;
  polling = false;
  await poller;
  const recovered = fault === "storage-outage" ? converged : restarts(dir, daemon) > before && daemonPid(dir, daemon) > 0;
  let match = false;
  if (converged && last) {
    const [source, replica] = await fingerprints(dir, last);
    match = source === replica;
    if (!match) note = `${note ? `${note}; ` : ""}source ${source.slice(0, 12)}… replica ${replica.slice(0, 12)}…`;
  } else if (last) {
    note = `${note ? `${note}; ` : ""}last state ${last.state}, rpo ${last.rpoSeconds.toFixed(1)} s, captured ${last.capturedSequence}, processed ${last.processedSequence}`;
  }
  return { fault, atSeconds, recovered, converged, match, worstRpoSeconds: worstRpo, convergeSeconds, resynced, note };
}

function caughtUp(m: Machine): boolean {
  return m.rpoSeconds === 0 && m.pendingBytes === 0 && m.capturedSequence > 0 && m.receivedSequence === m.capturedSequence && m.processedSequence === m.capturedSequence;
}

/** Random 4 KiB–64 KiB writes for FIO_SECONDS; resolves with a note when fio did not finish cleanly (its export went away). */
function runFio(uri: string, seed: number): Promise<string> {
  const args = [
    "--name=chaos",
    "--ioengine=nbd",
    `--uri=${uri}`,
    "--rw=randwrite",
    "--bsrange=4k-64k",
    "--iodepth=8",
    `--runtime=${FIO_SECONDS}`,
    "--time_based",
    `--randseed=${seed}`,
    "--rate=4m",
  ];
  return new Promise((resolve) => {
    execFile("fio", args, { timeout: 120_000 }, (err) => resolve(err ? "fio stopped early (export went away)" : ""));
  });
}

async function fingerprints(dir: string, m: Machine): Promise<[string, string]> {
  const s = new LabLayout(dir).read().storage;
  const store = createBlobStore({ kind: s.kind, connectionString: s.connectionString, directory: s.directory, container: "srlab" });
  await store.init();
  try {
    const disk = m.disks[0]!;
    const blob = replicaBlobName(m.machineId, 0);
    const size = (await store.pageBlobSize(blob)) ?? 0;
    const replica = (await hashDisk(size, (o, l) => store.readPages(blob, o, l))).fingerprint();
    const source = (await hashImageFile(disk.path, { sizeBytes: disk.sizeBytes })).fingerprint();
    return [source, replica];
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${(err as Error).message}\n`);
  process.exit(1);
});
