import { formatByteRange } from "../../common/blockhash/index.js";
import { type Job, JobState, type TelemetrySample, type VerifyResult, VerifyTarget } from "../../proto/index.js";
import type { RunSummary } from "./plan-runner.js";
import type { PlanSpec } from "./plan-spec.js";
import type { RehearsalOptions } from "./rehearsal-context.js";
import { failuresOf, type RehearsalReport, type ReportFigure, type ReportMachine, type ReportProof, type ReportStep, targetMet } from "./rehearsal-report.js";

/** What a rehearsal found as it went: proofs per machine, each plan run's figures, the first failure. */
export interface Findings {
  proofs: Map<string, ReportProof[]>;
  summaries: RunSummary[];
  failure?: Error;
}

/**
 * The report of a rehearsal from its job as it ended (`current`), what it found, and the
 * telemetry samples since it started.
 */
export function buildRehearsalReport(current: Job, spec: PlanSpec, o: RehearsalOptions, started: Date, found: Findings, samples: TelemetrySample[]): RehearsalReport {
  const steps: ReportStep[] = current.steps.map((s) => ({
    name: s.name,
    group: s.group,
    machine: s.machine || null,
    state: stateLabel(s.state),
    startedAt: s.startTime?.toISOString() ?? null,
    endedAt: s.endTime?.toISOString() ?? null,
    message: s.message || null,
    output: s.output || null,
  }));
  const rpoTarget = spec.targets.rpoSeconds ?? null;
  const rtoTarget = spec.targets.rtoSeconds ?? null;
  // The point the test failover proved names the machine's row; its figures are those of
  // every failover and failback the cycle ran.
  const test = found.summaries.find((x) => x.operation === "test-failover");
  const machines: ReportMachine[] = spec.groups.flatMap((g) =>
    g.machines.map((name) => {
      const s = test?.machines.find((m) => m.name === name);
      const measured: ReportFigure[] = found.summaries.flatMap((x) => {
        const m = x.machines.find((y) => y.name === name);
        if (!m) return [];
        return [{ operation: x.operation, rpoSeconds: m.rpoSeconds, rtoSeconds: m.rtoSeconds, rpoMet: targetMet(rpoTarget, m.rpoSeconds), rtoMet: targetMet(rtoTarget, m.rtoSeconds) }];
      });
      const worst = (k: "rpoSeconds" | "rtoSeconds") => {
        const v = measured.map((f) => f[k]);
        return v.length === 0 || v.some((x) => x === null) ? null : Math.max(...(v as number[]));
      };
      const rpoSeconds = worst("rpoSeconds");
      const rtoSeconds = worst("rtoSeconds");
      return {
        name,
        group: g.name,
        recoveryPointId: s?.recoveryPointId ?? "",
        sequence: s?.sequence ?? 0,
        rpoSeconds,
        rtoSeconds,
        rpoMet: targetMet(rpoTarget, rpoSeconds),
        rtoMet: targetMet(rtoTarget, rtoSeconds),
        figures: measured,
        proofs: found.proofs.get(name) ?? [],
      };
    }),
  );
  const targets = {
    rpoSeconds: rpoTarget,
    rtoSeconds: rtoTarget,
    rpoMet: machines.every((m) => m.rpoMet),
    rtoMet: machines.every((m) => m.rtoMet),
  };
  const failures = failuresOf({ steps, machines, targets });
  // Every machine must have been proved: a rehearsal that proved nothing did not pass.
  for (const m of machines) if (m.proofs.length === 0) failures.push(`${m.name}: no disk was proved`);
  return {
    runId: current.jobId,
    plan: spec.name,
    cycle: o.cycle,
    result: failures.length === 0 ? "passed" : "failed",
    failures,
    scheduled: o.scheduled,
    network: o.network,
    workload: o.workload ?? null,
    startedAt: started.toISOString(),
    endedAt: new Date().toISOString(),
    targets,
    steps,
    machines,
    rpoSamples: rpoSeries(samples, spec.groups.flatMap((g) => g.machines)),
  };
}

/** The proof of each disk a verify step checked. */
export function proofsOf(step: string, r: VerifyResult): ReportProof[] {
  return r.disks.map((d) => ({
    step,
    disk: d.index,
    expected: d.expected,
    actual: d.actual,
    ok: d.ok,
    sequence: r.sequence,
    ranges: d.ranges.map(formatByteRange),
    ...(r.target === VerifyTarget.VERIFY_TARGET_FAILED_BACK ? { against: "the Azure disk" } : {}),
  }));
}

/** One line naming every disk that differs and where. */
export function mismatchLine(r: VerifyResult): string {
  return r.disks
    .filter((d) => !d.ok)
    .map((d) => `${r.machine} disk ${d.index} differs from ${r.target === VerifyTarget.VERIFY_TARGET_FAILED_BACK ? "the Azure disk" : `the source at sequence ${r.sequence}`}: ${d.ranges.map(formatByteRange).join(", ") || "whole disk"}`)
    .join("; ");
}

/** Per machine, its RPO in each sample of the run (null where a sample lacks it). */
function rpoSeries(samples: TelemetrySample[], names: string[]): RehearsalReport["rpoSamples"] {
  const t = samples.map((s) => Math.round((s.time?.getTime() ?? 0) / 100) / 10);
  const machines: Record<string, Array<number | null>> = {};
  for (const name of names) machines[name] = samples.map((s) => s.machines.find((m) => m.name === name)?.rpoSeconds ?? null);
  return { t, machines };
}

function stateLabel(state: JobState): string {
  return (JobState[state] ?? "JOB_STATE_UNSPECIFIED").replace(/^JOB_STATE_/, "").toLowerCase().replace(/_/g, "-");
}
