import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { rehearsalCycles, workloadProfiles } from "../../common/enum-names/index.js";
import { parseRate } from "../../common/units/index.js";
import { type Job, JobState, type PlanSchedule, type RehearsalWorkload, RehearsalResult } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { removeAzureMachine, startAzureMachine } from "../lab/index.js";
import { LOAD_PROFILES, PROFILE_NAMES } from "../loadtest/index.js";
import { enumLabel, printJson, printTable } from "../output.js";

export interface RehearseOptions {
  cycle?: string;
  workload?: string;
  rate?: string;
  network?: string;
  autoApprove?: boolean;
  report?: string;
  json?: boolean;
}

/** The generator settings of a load profile (the ones `srlab loadtest --via generator` uses). */
export function rehearsalWorkload(profile: string | undefined, rate: string | undefined): RehearsalWorkload | undefined {
  if (profile === undefined) {
    if (rate !== undefined) throw new Error("--rate needs --workload PROFILE");
    return undefined;
  }
  const p = LOAD_PROFILES[profile];
  if (!p) throw new Error(`--workload: unknown profile "${profile}" (${PROFILE_NAMES.join(", ")})`);
  let rateBytesPerSecond: number;
  try {
    rateBytesPerSecond = parseRate(rate ?? "2MB/s");
  } catch (err) {
    throw new Error(`--rate: ${(err as Error).message}`);
  }
  if (rateBytesPerSecond <= 0) throw new Error("--rate must be above zero");
  return { name: p.name, profile: workloadProfiles.parse(p.generator.profile), blockSize: p.generator.blockSize, rateBytesPerSecond };
}

function cycleOf(cycle: string | undefined): "test" | "full" {
  if (cycle !== "test" && cycle !== "full") throw new Error(`--cycle must be test or full${cycle ? `, got "${cycle}"` : ""}`);
  return cycle;
}

/**
 * `srlab rehearse`: the configuration server runs the rehearsal (the same code runs scheduled
 * ones); this follows its steps live, then writes report.json, junit.xml and report.html.
 * Resolves to the exit status: 0 only when the rehearsal passed.
 */
export function rehearse(dir: string, name: string, o: RehearseOptions): Promise<number> {
  const cycle = cycleOf(o.cycle);
  const workload = rehearsalWorkload(o.workload, o.rate);
  return AdminClient.using(dir, async (c) => {
    const { run } = await c.callOn(c.plans, c.plans.rehearse, { name, cycle: rehearsalCycles.parse(cycle), network: o.network ?? "", workload, autoApprove: Boolean(o.autoApprove) });
    const runId = run!.runId;
    process.stderr.write(`rehearsal ${runId}: ${cycle} cycle of plan ${name}\n`);
    await follow(c, runId, new AzureMachines(dir));
    const files = await c.callOn(c.plans, c.plans.getRehearsalReport, { runId });
    const out = resolve(o.report ?? join(dir, "rehearsals", runId));
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "report.json"), files.reportJson);
    writeFileSync(join(out, "junit.xml"), files.junitXml);
    writeFileSync(join(out, "report.html"), files.reportHtml);
    const report = JSON.parse(files.reportJson) as ReportView;
    if (o.json) printJson({ ...report, reportDir: out });
    else printSummary(report, out);
    return files.result === RehearsalResult.REHEARSAL_RESULT_PASSED ? 0 : 1;
  });
}

interface ReportView {
  result: string;
  failures: string[];
  targets: { rpoSeconds: number | null; rtoSeconds: number | null; rpoMet: boolean; rtoMet: boolean };
  steps: Array<{ state: string }>;
  machines: Array<{ name: string; rpoSeconds: number | null; rtoSeconds: number | null; rpoMet: boolean; rtoMet: boolean; proofs: Array<{ ok: boolean }> }>;
}

function printSummary(r: ReportView, out: string): void {
  const s = (v: number | null) => (v === null ? "–" : `${v.toFixed(1)} s`);
  const target = (v: number | null) => (v === null ? "no target" : `target ${v} s`);
  printTable(
    ["MACHINE", "RPO", "RTO", "PROOFS"],
    r.machines.map((m) => [
      m.name,
      `${s(m.rpoSeconds)}${m.rpoMet ? "" : " (missed)"}`,
      `${s(m.rtoSeconds)}${m.rtoMet ? "" : " (missed)"}`,
      `${m.proofs.filter((p) => p.ok).length}/${m.proofs.length} hold`,
    ]),
  );
  const ok = r.steps.filter((x) => x.state === "succeeded").length;
  console.log(`steps: ${ok}/${r.steps.length} succeeded; RPO ${target(r.targets.rpoSeconds)} ${r.targets.rpoMet ? "met" : "missed"}; RTO ${target(r.targets.rtoSeconds)} ${r.targets.rtoMet ? "met" : "missed"}`);
  console.log(`rehearsal ${r.result}; report: ${join(out, "report.html")}`);
  for (const f of r.failures) process.stderr.write(`  ${f}\n`);
}

/** Step names of the full cycle at which the lab starts or stops a machine's agent in Azure. */
const RUNNING_IN_AZURE = "running in Azure: ";
const COMMIT_FAILBACK = "commit failback: ";

/**
 * The lab's part of a full cycle: the configuration server cannot start processes, so, as
 * `srlab commit` does, this starts a machine's agent in Azure when the rehearsal waits for it
 * and stops it once the failback is committed (or at the end, for a machine no longer in Azure).
 */
class AzureMachines {
  private readonly started = new Set<string>();
  private readonly stopped = new Set<string>();
  private readonly pending: Promise<void>[] = [];

  constructor(private readonly dir: string) {}

  onStep(name: string, machine: string, state: JobState): void {
    if (!machine) return;
    if (name.startsWith(RUNNING_IN_AZURE) && state === JobState.JOB_STATE_IN_PROGRESS && !this.started.has(machine)) {
      this.started.add(machine);
      this.track(machine, "start", async () => {
        const agent = await startAzureMachine(this.dir, machine);
        process.stderr.write(`         ${machine} runs in Azure (agent ${agent.name}, pid ${agent.pid})\n`);
      });
    }
    if (name.startsWith(COMMIT_FAILBACK) && state === JobState.JOB_STATE_SUCCEEDED) this.stop(machine);
  }

  stop(machine: string): void {
    if (!this.started.has(machine) || this.stopped.has(machine)) return;
    this.stopped.add(machine);
    this.track(machine, "stop", async () => {
      await removeAzureMachine(this.dir, machine);
      process.stderr.write(`         ${machine} no longer runs in Azure\n`);
    });
  }

  /** Waits for starts and stops in flight. */
  async settle(): Promise<void> {
    await Promise.all(this.pending);
  }

  private track(machine: string, what: string, fn: () => Promise<void>): void {
    this.pending.push(
      fn().catch((err: unknown) => {
        process.stderr.write(`         could not ${what} ${machine}'s agent in Azure: ${(err as Error).message}\n`);
      }),
    );
  }
}

/** Prints each step as it changes state until the rehearsal ends (a manual action is announced). */
async function follow(c: AdminClient, runId: string, azure: AzureMachines): Promise<Job> {
  const seen = new Map<string, JobState>();
  for (;;) {
    const { job } = await c.call(c.client.getJob, { jobId: runId });
    if (!job) throw new Error(`rehearsal ${runId} disappeared`);
    for (const s of job.steps) {
      azure.onStep(s.name, s.machine, s.state);
      if (seen.get(s.name) === s.state || s.state === JobState.JOB_STATE_NOT_STARTED) continue;
      seen.set(s.name, s.state);
      const at = new Date().toISOString().slice(11, 19);
      const state = enumLabel(JobState, s.state, "JOB_STATE_");
      process.stderr.write(`${at} ${state.padEnd(12)} ${s.name}${s.message ? ` — ${s.message}` : ""}\n`);
      if (s.state === JobState.JOB_STATE_WAITING_FOR_MANUAL_ACTION) {
        process.stderr.write(`         waits for you: srlab plan resume ${runId} [--comment TEXT] (or --skip, --cancel)\n`);
      }
    }
    if (job.state !== JobState.JOB_STATE_IN_PROGRESS && job.state !== JobState.JOB_STATE_NOT_STARTED) {
      await azure.settle();
      // A machine the rehearsal left in Azure keeps its agent; one that came back loses it.
      for (const name of new Set(job.steps.map((s) => s.machine).filter(Boolean))) {
        const { machine } = await c.call(c.client.getMachine, { machine: name });
        if (machine && !machine.azureAgentComponentId && machine.azureDisks.length === 0) azure.stop(name);
      }
      await azure.settle();
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `srlab plan schedule NAME --cron EXPR --cycle test` (or `--off`). */
export function planSchedule(dir: string, name: string, o: { cron?: string; cycle?: string; off?: boolean; workload?: string; rate?: string; network?: string; autoApprove?: boolean; json?: boolean }) {
  if (o.off && (o.cron || o.cycle)) throw new Error("--off takes no --cron or --cycle");
  if (!o.off && !o.cron) throw new Error("say when: --cron EXPR (or --off)");
  const workload = o.off ? undefined : rehearsalWorkload(o.workload, o.rate);
  return AdminClient.using(dir, async (c) => {
    const { schedule } = await c.callOn(c.plans, c.plans.schedulePlan, {
      name,
      cron: o.cron ?? "",
      cycle: rehearsalCycles.parse(o.cycle ?? "test"),
      network: o.network ?? "",
      workload,
      autoApprove: Boolean(o.autoApprove),
      off: Boolean(o.off),
    });
    if (o.json) printJson(schedule ? scheduleDoc(schedule) : { plan: name, schedule: null });
    else if (!schedule) console.log(`plan ${name}: no more scheduled rehearsals`);
    else console.log(`plan ${name}: ${rehearsalCycles.name(schedule.cycle)} rehearsal on "${schedule.cron}", next at ${schedule.nextRun?.toISOString() ?? "–"}`);
  });
}

export function planSchedules(dir: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { schedules } = await c.callOn(c.plans, c.plans.listPlanSchedules, {});
    if (o.json) printJson(schedules.map(scheduleDoc));
    else
      printTable(
        ["PLAN", "CRON", "CYCLE", "NETWORK", "WORKLOAD", "NEXT RUN"],
        schedules.map((s) => [s.plan, s.cron, rehearsalCycles.name(s.cycle), s.network, s.workload?.name ?? "", s.nextRun?.toISOString() ?? ""]),
      );
  });
}

function scheduleDoc(s: PlanSchedule) {
  return {
    plan: s.plan,
    cron: s.cron,
    cycle: rehearsalCycles.name(s.cycle),
    network: s.network,
    workload: s.workload ? { ...s.workload, profile: workloadProfiles.name(s.workload.profile) } : null,
    autoApprove: s.autoApprove,
    nextRun: s.nextRun?.toISOString() ?? null,
  };
}
