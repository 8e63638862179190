import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { JobState } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { LabLayout, labMachines, labUp } from "../lab/index.js";
import { capacityPlan } from "./capacity-plan.js";
import { Histogram } from "./histogram.js";
import { LiveView, liveFigures } from "./live-view.js";
import { isLoadReport, type LoadReport } from "./report.js";
import { renderReportHtml } from "./report-html.js";
import { type RunSample, toRunSample } from "./samples.js";
import { type LoadSpec, loadSeconds } from "./spec.js";
import { figureOf, summarize } from "./summary.js";
import { judge } from "./thresholds.js";
import { LoadJob, type PhaseName } from "./load-job.js";
import { assign, drive, ensureProtected, groupDocs } from "./drive.js";
import { drain, verifyMachine } from "./replica-check.js";
import { environment } from "./environment.js";

/** Exit status when a threshold is breached (as k6). */
export const EXIT_THRESHOLD = 99;
/** Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

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

