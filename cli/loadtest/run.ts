import { workloadProfiles } from "../../common/enum-names/index.js";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { createStorage } from "./storage.js";
import { type AlertThresholds, JobState, JobType, type Machine, ReplicationState } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { LabLayout, labMachines, labUp } from "../lab/index.js";
import { ProgressLine } from "../output.js";
import { waitForJob } from "../commands/jobs.js";
import { capacityPlan } from "./capacity-plan.js";
import { type FioOutcome, profileJobFile, runFio } from "./fio-runner.js";
import { Histogram } from "./histogram.js";
import { LiveView, liveFigures } from "./live-view.js";
import { LOAD_PROFILES } from "./profiles.js";
import { isLoadReport, type LoadReport } from "./report.js";
import { renderReportHtml } from "./report-html.js";
import { type RunSample, toRunSample } from "./samples.js";
import { type LoadSpec, loadSeconds, type Stage } from "./spec.js";
import { figureOf, summarize } from "./summary.js";
import { judge } from "./thresholds.js";
import { hashFile, hashReplica } from "./verify.js";

/** Exit status when a threshold is breached (as k6). */
export const EXIT_THRESHOLD = 99;
/** Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** The steps of a load test's job, in order (what `srlab jobs` and the dashboard show). */
const PHASES = ["machines", "protection", "load", "drain", "verify", "report"] as const;
type PhaseName = (typeof PHASES)[number];

export interface LoadtestOptions {
  dir: string;
  spec: LoadSpec;
  reportDir?: string;
  compare?: string;
  json: boolean;
  /** Live view on a terminal (default: when stderr is one). */
  tty?: boolean;
  /** Stops the load early (Ctrl-C): the run ends with a partial report. Default: SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

/** What can be checked before anything starts: the lab, fio, the run to compare with. */
export function preflight(o: LoadtestOptions): { compareWith?: LoadReport } {
  new LabLayout(o.dir).read();
  if (o.spec.via === "nbd" && spawnSync("fio", ["--enghelp=nbd"], { stdio: "ignore" }).status !== 0) {
    throw new Error("--via nbd needs fio built with its nbd engine (install fio)");
  }
  if (!o.compare) return {};
  const file = existsSync(join(o.compare, "report.json")) ? join(o.compare, "report.json") : o.compare;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`--compare: cannot read a load-test report from ${o.compare}: ${(err as Error).message}`);
  }
  if (!isLoadReport(doc)) throw new Error(`--compare: ${file} is not a srlab load-test report`);
  return { compareWith: doc };
}

interface Assignment {
  machine: Machine;
  profile: string;
  stages: Stage[];
}

/** Runs a load test end to end and returns the exit status (0, 1 or 99). */
export async function runLoadtest(o: LoadtestOptions): Promise<number> {
  const { compareWith } = preflight(o);
  const spec = o.spec;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const layout = new LabLayout(o.dir);
  const phases: LoadReport["phases"] = [];
  // The run is a job on the configuration server once the lab is reachable (after "machines").
  let job: LoadJob | undefined;
  const phase = async <T>(name: PhaseName, fn: () => Promise<T>): Promise<T> => {
    const startMs = Date.now();
    await job?.step(name, JobState.JOB_STATE_IN_PROGRESS);
    try {
      const v = await fn();
      phases.push({ name, startMs, endMs: Date.now(), state: "succeeded" });
      await job?.step(name, JobState.JOB_STATE_SUCCEEDED);
      return v;
    } catch (err) {
      phases.push({ name, startMs, endMs: Date.now(), state: "failed" });
      await job?.step(name, JobState.JOB_STATE_FAILED, (err as Error).message);
      throw err;
    }
  };
  // Ctrl-C stops the load and ends the run with a partial report; a second Ctrl-C exits at once.
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(EXIT_INTERRUPTED);
    say("stopping the load test (Ctrl-C again to quit at once); writing a partial report");
    stop.abort(new Error("interrupted by the user (Ctrl-C)"));
  };
  if (o.signal) o.signal.addEventListener("abort", () => stop.abort(o.signal!.reason), { once: true });
  else {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  const startedAt = new Date();
  const id = `lt-${startedAt.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-")}`;
  const reportDir = resolve(o.reportDir ?? join(layout.dir, "loadtests", id));

  // 1. The lab has the machines, and they are protected.
  await phase("machines", async () => {
    const manifest = layout.read();
    if (labMachines(manifest).length < spec.machines) {
      say(`adding machines: the lab has ${labMachines(manifest).length}, the test needs ${spec.machines}`);
      await labUp({
        dir: o.dir,
        machines: spec.machines,
        disksPerMachine: 1,
        diskSizeBytes: spec.diskSizeBytes ?? 0,
        explicitDiskSize: spec.diskSizeBytes !== undefined,
        processServers: 1,
        timeUnitSeconds: manifest.timeUnitSeconds,
        storage: "azurite",
        onProgress: say,
      });
    }
  });
  const client = AdminClient.forDir(o.dir);
  const telemetry = client.telemetry();
  job = await LoadJob.start(client, id, phases);
  try {
    const names = labMachines(client.manifest).slice(0, spec.machines);
    const machines = await phase("protection", () => ensureProtected(client, names, say));
    const { components } = await client.call(client.client.listComponents, {});
    const psName = new Map(components.map((c) => [c.componentId, c.name]));
    const assignments = assign(spec, machines);
    const settings = await telemetry.call(telemetry.client.getTelemetrySettings, {});

    // 2. Load, with samples and the live view every second.
    const total = spec.fioJobFile ? undefined : loadSeconds(spec);
    const testMachines = new Set(names);
    const samples: RunSample[] = [];
    const loadStart = Date.now();
    let since = new Date(loadStart - 3_000);
    let current = "load";
    let loadEnd: number | undefined;
    const view = new LiveView(o.tty ?? Boolean(process.stderr.isTTY));
    const poll = async () => {
      const { samples: fresh } = await telemetry.call(telemetry.client.getSamples, { since });
      for (const s of fresh) {
        samples.push(toRunSample(s, loadStart, testMachines));
        since = s.time ?? since;
      }
      const cur = samples[samples.length - 1];
      if (cur && fresh.length) {
        const elapsed = (Date.now() - loadStart) / 1000;
        view.update(liveFigures(samples[samples.length - 2], cur, current, loadEnd ? (loadEnd - loadStart) / 1000 : elapsed, total));
        if (!loadEnd && total) await job?.step("load", JobState.JOB_STATE_IN_PROGRESS, `${current}: ${elapsed.toFixed(0)} of ${total} s`, (100 * elapsed) / total);
      }
    };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await poll().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();

    let latency: Histogram | undefined;
    let failure: Error | undefined;
    try {
      const outcomes = await phase("load", async () => {
        const done = await drive(client, spec, assignments, reportDir, stop.signal, (label) => {
          current = label;
        });
        if (stop.signal.aborted) throw stop.signal.reason as Error;
        return done;
      });
      if (outcomes.length) {
        latency = new Histogram();
        for (const f of outcomes) for (const [v, c] of f.latency.toJSON().buckets) latency.record(v, c);
      }
      loadEnd = Date.now();
      current = "drain";
      await phase("drain", () => drain(client, names, spec.drainTimeoutSeconds));
      current = "done";
    } catch (err) {
      failure = err as Error;
      loadEnd ??= Date.now();
    } finally {
      polling = false;
      await poller;
      await poll().catch(() => undefined);
    }
    view.note(failure ? `load test stopped: ${failure.message}` : `load ended after ${((loadEnd! - loadStart) / 1000).toFixed(0)} s; replication drained`);

    // 3. Every replica equals its source.
    const machineDocs: LoadReport["machines"] = [];
    if (!failure) {
      await phase("verify", async () => {
        for (const a of assignments) machineDocs.push(await verifyMachine(client, a, psName.get(a.machine.processServerId) ?? "?", spec.drainTimeoutSeconds));
      });
    }
    const verified = !failure && machineDocs.length > 0 && machineDocs.every((m) => m.verified);
    const loadSecs = ((loadEnd ?? Date.now()) - loadStart) / 1000;
    const summary = summarize(samples, loadSecs, latency, verified);
    const thresholds = judge(spec.thresholds, (metric, aggregate) => figureOf(summary, metric, aggregate));
    const breached = thresholds.filter((t) => !t.passed);
    const lost = machineDocs.filter((m) => !m.verified).map((m) => m.name);
    const verdict: LoadReport["verdict"] = stop.signal.aborted
      ? { passed: false, exitCode: EXIT_INTERRUPTED, reason: `partial report: ${(stop.signal.reason as Error).message} after ${loadSecs.toFixed(0)} s of load; replicas not verified` }
      : failure
      ? { passed: false, exitCode: 1, reason: `the run failed: ${failure.message}` }
      : lost.length
        ? { passed: false, exitCode: 1, reason: `replica differs from its source after the drain: ${lost.join(", ")}` }
        : breached.length
          ? { passed: false, exitCode: EXIT_THRESHOLD, reason: `threshold breached: ${breached.map((t) => `${t.expression} (actual ${t.actual === null ? t.note : round(t.actual)})`).join("; ")}` }
          : { passed: true, exitCode: 0, reason: `passed: every replica equals its source${thresholds.length ? `, ${thresholds.length} threshold${thresholds.length > 1 ? "s" : ""} held` : ""}` };
    const report: LoadReport = {
      kind: "srlab-loadtest",
      formatVersion: 1,
      id,
      startedAt: startedAt.toISOString(),
      loadEndedAt: new Date(loadEnd ?? Date.now()).toISOString(),
      endedAt: new Date().toISOString(),
      spec: {
        machines: spec.machines,
        via: spec.via,
        fioJobFile: spec.fioJobFile ?? null,
        groups: groupDocs(assignments),
        thresholds: spec.thresholds.map((t) => t.expression),
        seed: spec.seed,
        plan: spec.plan,
      },
      environment: environment(client, settings.thresholds ?? null, settings.timeUnitSeconds),
      phases,
      machines: machineDocs,
      samples,
      latency: latency?.toJSON() ?? null,
      summary,
      thresholds,
      capacityPlan: capacityPlan(samples, loadSecs, new Map(machines.map((m) => [m.name, psName.get(m.processServerId) ?? "?"])), spec.plan),
      verdict,
    };
    await phase("report", async () => {
      mkdirSync(reportDir, { recursive: true });
      const json = `${JSON.stringify(report, null, 2)}\n`;
      const page = renderReportHtml(report, compareWith);
      writeFileSync(join(reportDir, "report.json"), json);
      writeFileSync(join(reportDir, "report.html"), page);
      await job?.attach({ "report.html": page, "report.json": json });
    });
    await job?.finish(verdict, stop.signal.aborted, { reportDir, summary });
    printOutcome(report, reportDir, o.json);
    return verdict.exitCode;
  } catch (err) {
    await job?.finish({ passed: false, exitCode: 1, reason: (err as Error).message }, stop.signal.aborted);
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    telemetry.client.close();
    client.close();
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Protects the machines that are not yet, and waits until all are protected. */
async function ensureProtected(client: AdminClient, names: string[], say: (l: string) => void): Promise<Machine[]> {
  const out: Machine[] = [];
  for (const name of names) {
    let { machine } = await client.call(client.client.getMachine, { machine: name });
    const until = Date.now() + 120_000;
    while (!machine && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      machine = (await client.call(client.client.getMachine, { machine: name }).catch(() => ({ machine: undefined }))).machine;
    }
    if (!machine) throw new Error(`machine ${name} did not register with the configuration server`);
    if (machine.state === ReplicationState.REPLICATION_STATE_UNPROTECTED) {
      say(`protecting ${name}`);
      const { job } = await client.call(client.client.enableProtection, { machine: name, policyName: "" });
      await waitForJob(client, job!.jobId, true);
    }
    for (;;) {
      ({ machine } = await client.call(client.client.getMachine, { machine: name }));
      if (machine!.state === ReplicationState.REPLICATION_STATE_PROTECTED) break;
      if (Date.now() > until + 600_000) throw new Error(`machine ${name} is not protected (state ${ReplicationState[machine!.state]})`);
      await new Promise((r) => setTimeout(r, 500));
    }
    out.push(machine!);
  }
  return out;
}

/** Which machine runs which profile and stages: groups take the machines in order (or by name). */
function assign(spec: LoadSpec, machines: Machine[]): Assignment[] {
  const left = [...machines];
  const out: Assignment[] = [];
  for (const g of spec.groups) {
    const chosen = g.names
      ? g.names.map((n) => {
          const i = left.findIndex((m) => m.name === n);
          if (i < 0) throw new Error(`group names machine ${n}, which is not in the test (or named twice)`);
          return left.splice(i, 1)[0]!;
        })
      : left.splice(0, g.count ?? left.length);
    for (const m of chosen) out.push({ machine: m, profile: spec.fioJobFile ? "fio" : g.profile, stages: g.stages });
  }
  return out;
}

function groupDocs(assignments: Assignment[]): LoadReport["spec"]["groups"] {
  const byKey = new Map<string, LoadReport["spec"]["groups"][number]>();
  for (const a of assignments) {
    const key = `${a.profile}|${JSON.stringify(a.stages)}`;
    const g = byKey.get(key) ?? { machines: [], profile: a.profile, stages: a.stages };
    g.machines.push(a.machine.name);
    byKey.set(key, g);
  }
  return [...byKey.values()];
}

/**
 * Drives every disk of every machine through its stages (a machine's rate is shared evenly by
 * its disks); returns fio's outcomes when fio ran. An abort stops fio and the generators.
 */
async function drive(client: AdminClient, spec: LoadSpec, assignments: Assignment[], reportDir: string, signal: AbortSignal, onStage: (label: string) => void): Promise<FioOutcome[]> {
  if (spec.via === "nbd") {
    const dir = join(reportDir, "fio");
    mkdirSync(dir, { recursive: true });
    onStage("load (fio)");
    const runs = assignments.flatMap((a) =>
      a.machine.disks.map(async (disk) => {
        const share = a.machine.disks.length;
        const stages = a.stages.map((s) => ({ ...s, rateBytesPerSecond: Math.max(1, Math.round(s.rateBytesPerSecond / share)) }));
        const target = { machine: a.machine.name, nbdUri: disk.nbdUri, diskSizeBytes: disk.sizeBytes };
        const name = share > 1 ? `${a.machine.name}-disk${disk.index}` : a.machine.name;
        let jobFile = spec.fioJobFile;
        if (!jobFile) {
          jobFile = join(dir, `${name}.fio`);
          writeFileSync(jobFile, profileJobFile(a.profile, stages, target, spec.seed + disk.index));
        }
        return runFio(jobFile, target, join(dir, `${name}.json`), signal);
      }),
    );
    return Promise.all(runs);
  }
  const stages = Math.max(...assignments.map((a) => a.stages.length));
  const running = new Set<string>();
  const cancel = () => {
    for (const jobId of running) void client.call(client.client.cancelJob, { jobId, reason: "the load test was stopped" }).catch(() => undefined);
  };
  signal.addEventListener("abort", cancel, { once: true });
  try {
    await Promise.all(
      assignments.map(async (a) => {
        const p = LOAD_PROFILES[a.profile]!;
        const share = a.machine.disks.length;
        for (const [i, s] of a.stages.entries()) {
          if (signal.aborted) return;
          if (a === assignments[0]) onStage(stages > 1 ? `load stage ${i + 1}/${stages}` : "load");
          const jobs = await Promise.all(
            a.machine.disks.map(async (d) => {
              const { job } = await client.call(client.client.startWorkload, {
                machine: a.machine.name,
                workload: {
                  machineId: "",
                  profile: workloadProfiles.parse(p.generator.profile),
                  rateBytesPerSecond: Math.max(1, Math.round(s.rateBytesPerSecond / share)),
                  iops: 0,
                  durationSeconds: s.durationSeconds,
                  seed: spec.seed + i + 1000 * d.index,
                  blockSize: p.generator.blockSize,
                  diskIndex: d.index,
                },
              });
              running.add(job!.jobId);
              return job!.jobId;
            }),
          );
          if (signal.aborted) cancel();
          await Promise.all(jobs.map((id) => waitQuietly(client, id, signal).finally(() => running.delete(id))));
        }
      }),
    );
  } finally {
    signal.removeEventListener("abort", cancel);
  }
  return [];
}

/** Waits for a workload job; a cancelled one is fine once the run itself was stopped. */
async function waitQuietly(client: AdminClient, jobId: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    const { job } = await client.call(client.client.getJob, { jobId });
    if (job && job.state === JobState.JOB_STATE_SUCCEEDED) return;
    if (job && job.state === JobState.JOB_STATE_CANCELLED && signal.aborted) return;
    if (job && (job.state === JobState.JOB_STATE_FAILED || job.state === JobState.JOB_STATE_CANCELLED)) throw new Error(`workload job ${jobId} failed: ${job.error}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until every write each machine captured is in storage and applied to its replica. */
async function drain(client: AdminClient, names: string[], timeoutSeconds: number): Promise<void> {
  const until = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const { machines } = await client.call(client.client.listMachines, {});
    const behind = machines.filter((m) => names.includes(m.name)).filter((m) => {
      const s = m.stats;
      return !s || s.processedSequence < s.capturedSequence || s.uploadedSequence < s.capturedSequence || s.rpoSeconds > 0;
    });
    if (behind.length === 0) return;
    if (Date.now() > until) throw new Error(`replication did not drain within ${timeoutSeconds} s (${behind.map((m) => m.name).join(", ")} behind)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Hashes every disk of a machine and its replica; a mismatch is re-checked until the drain timeout. */
async function verifyMachine(client: AdminClient, a: Assignment, processServer: string, timeoutSeconds: number): Promise<LoadReport["machines"][number]> {
  const { machine } = await client.call(client.client.getMachine, { machine: a.machine.name });
  const store = createStorage(client.manifest);
  await store.init();
  // On a terminal the percentage moves in place; in a log, one line per disk.
  const line = new ProgressLine(Boolean(process.stderr.isTTY));
  try {
    const disks: LoadReport["machines"][number]["disks"] = [];
    for (const d of machine!.disks) {
      const until = Date.now() + timeoutSeconds * 1000;
      if (!process.stderr.isTTY) process.stderr.write(`verifying ${a.machine.name} disk ${d.index} (${d.sizeBytes} bytes)\n`);
      const progress = (what: string) => (n: number) => line.update(`verifying ${a.machine.name} disk ${d.index}: ${what} ${((100 * n) / d.sizeBytes).toFixed(0)}%`);
      const source = await hashFile(d.imagePath, d.sizeBytes, progress("source"));
      let replica = await hashReplica(store, machine!.machineId, d.index, d.sizeBytes, progress("replica"));
      while (replica !== source && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 1_000));
        replica = await hashReplica(store, machine!.machineId, d.index, d.sizeBytes, progress("replica"));
      }
      disks.push({ index: d.index, sizeBytes: d.sizeBytes, sourceSha256: source, replicaSha256: replica ?? null, equal: replica === source });
    }
    return { name: a.machine.name, profile: a.profile, processServer, disks, verified: disks.length > 0 && disks.every((d) => d.equal) };
  } finally {
    line.done();
    await store.close();
  }
}

function environment(client: AdminClient, thresholds: AlertThresholds | null, timeUnitSeconds: number): LoadReport["environment"] {
  const s = client.manifest.storage;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    srlabVersion: srlabVersion(),
    storage: s.kind === "directory" ? "directory" : s.azuritePort ? "azurite" : "azure",
    timeUnitSeconds,
    processServers: client.manifest.components.filter((c) => c.role === "process-server").map((c) => c.name),
    alertThresholds: thresholds,
  };
}

function srlabVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "srlab") return pkg.version ?? "unknown";
    } catch {
      // not at this level
    }
  }
  return "unknown";
}

function printOutcome(report: LoadReport, dir: string, json: boolean): void {
  const s = report.summary;
  if (json) {
    console.log(JSON.stringify({ id: report.id, reportDir: dir, verdict: report.verdict, summary: s, thresholds: report.thresholds, capacityPlan: report.capacityPlan }, null, 2));
    return;
  }
  const mb = (v: number) => `${(v / 1e6).toFixed(2)} MB/s`;
  console.log(`${report.verdict.passed ? "PASSED" : "FAILED"}: ${report.verdict.reason}`);
  console.log(`  throughput captured ${mb(s.throughput.captured.mean)}, uploaded ${mb(s.throughput.uploaded.mean)}, processed ${mb(s.throughput.processed.mean)} (means)`);
  console.log(`  RPO p50 ${s.rpoSeconds.p50.toFixed(2)} s, p99 ${s.rpoSeconds.p99.toFixed(2)} s, max ${s.rpoSeconds.max.toFixed(2)} s${s.latencyMs ? `; NBD write latency p50 ${s.latencyMs.p50.toFixed(2)} ms, p99 ${s.latencyMs.p99.toFixed(2)} ms` : ""}`);
  for (const t of report.thresholds) console.log(`  ${t.passed ? "✓" : "✗"} ${t.expression}${t.actual === null ? ` (${t.note})` : ` (actual ${round(t.actual)})`}`);
  const p = report.capacityPlan;
  console.log(`  capacity plan for ${p.target.machines} machines at RPO ${p.target.rpoSeconds} s, +${p.target.growthPercent}%: ${p.processServers} process server(s), ${(p.cacheBytesPerProcessServer / 1024 ** 3).toFixed(1)} GiB cache each, ${(p.uploadBandwidthBitsPerSecond / 1e6).toFixed(1)} Mbit/s upload`);
  console.log(`  report: ${join(dir, "report.html")}`);
}

/**
 * The run as a job on the configuration server, so `srlab jobs` and the dashboard show it with
 * its steps and, once written, its report. Reporting is best effort: a run never fails because
 * its job could not be updated.
 */
class LoadJob {
  private constructor(
    private readonly client: AdminClient,
    readonly jobId: string,
  ) {}

  /** Starts the job with the phases already done (the lab had to be up to record it). */
  static async start(client: AdminClient, id: string, done: LoadReport["phases"]): Promise<LoadJob | undefined> {
    try {
      const { job } = await client.call(client.client.createClientJob, { type: JobType.JOB_TYPE_LOAD_TEST, machine: "", steps: [...PHASES] });
      const j = new LoadJob(client, job!.jobId);
      for (const p of done) await j.step(p.name as PhaseName, p.state === "succeeded" ? JobState.JOB_STATE_SUCCEEDED : JobState.JOB_STATE_FAILED, p.name === "machines" ? `load test ${id}` : "");
      return j;
    } catch {
      return undefined;
    }
  }

  async step(name: PhaseName, state: JobState, message = "", progressPercent = 0): Promise<void> {
    await this.update({ stepName: name, stepState: state, message, progressPercent });
  }

  async attach(files: Record<string, string>): Promise<void> {
    for (const [name, text] of Object.entries(files)) {
      await this.client.call(this.client.client.attachJobReport, { jobId: this.jobId, name, content: Buffer.from(text) }).catch(() => undefined);
    }
  }

  async finish(verdict: LoadReport["verdict"], interrupted: boolean, result?: object): Promise<void> {
    const finish = verdict.passed ? JobState.JOB_STATE_SUCCEEDED : interrupted ? JobState.JOB_STATE_CANCELLED : JobState.JOB_STATE_FAILED;
    await this.update({ finish, error: verdict.passed ? "" : verdict.reason, resultJson: JSON.stringify({ verdict, ...result }) });
  }

  private async update(u: Partial<{ stepName: string; stepState: JobState; message: string; progressPercent: number; finish: JobState; error: string; resultJson: string }>): Promise<void> {
    await this.client
      .call(this.client.client.updateClientJob, {
        jobId: this.jobId,
        stepName: u.stepName ?? "",
        stepState: u.stepState ?? JobState.JOB_STATE_UNSPECIFIED,
        progressPercent: u.progressPercent ?? 0,
        message: u.message ?? "",
        finish: u.finish ?? JobState.JOB_STATE_UNSPECIFIED,
        error: u.error ?? "",
        resultJson: u.resultJson ?? "",
      })
      .catch(() => undefined);
  }
}
