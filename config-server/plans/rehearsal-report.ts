/**
 * A rehearsal's report (report.json) and its JUnit rendering (junit.xml). The JSON is the
 * record; junit.xml and report.html are views of it, rendered again on request.
 */

export type RehearsalCycle = "test" | "full";

export interface ReportStep {
  name: string;
  /** The plan group, or "rehearsal" for the rehearsal's own steps (tag, workload). */
  group: string;
  machine: string | null;
  /** not-started, in-progress, succeeded, failed, skipped, waiting-for-manual-action, cancelled */
  state: string;
  startedAt: string | null;
  endedAt: string | null;
  message: string | null;
  output: string | null;
}

export interface ReportProof {
  /** The verify step that checked it. */
  step: string;
  disk: number;
  /** The source's fingerprint at the point's sequence, and the recovered disk's. */
  expected: string;
  actual: string;
  ok: boolean;
  sequence: number;
  /** Byte ranges that differ ("bytes 12288-16383"), when it did not hold. */
  ranges: string[];
  /** What the disk was compared with, when not the source at `sequence` ("the Azure disk" after a failback). */
  against?: string;
}

/** RPO and RTO one failover or failback of the cycle achieved for a machine. */
export interface ReportFigure {
  /** test-failover, failover or failback */
  operation: string;
  rpoSeconds: number | null;
  rtoSeconds: number | null;
  rpoMet: boolean;
  rtoMet: boolean;
}

export interface ReportMachine {
  name: string;
  group: string;
  recoveryPointId: string;
  sequence: number;
  /** The worst of `figures` (null when one was not measured). */
  rpoSeconds: number | null;
  rtoSeconds: number | null;
  rpoMet: boolean;
  rtoMet: boolean;
  /** Per failover and failback of the cycle, in order (absent in reports of older versions). */
  figures?: ReportFigure[];
  proofs: ReportProof[];
}

export interface ReportTargets {
  rpoSeconds: number | null;
  rtoSeconds: number | null;
  /** Every machine's achieved figure within the target (true when there is no target). */
  rpoMet: boolean;
  rtoMet: boolean;
}

export interface RehearsalReport {
  runId: string;
  plan: string;
  cycle: RehearsalCycle;
  result: "passed" | "failed";
  /** Why it failed, one line each (empty when it passed). */
  failures: string[];
  scheduled: boolean;
  network: string;
  workload: { name: string; profile: string; blockSize: number; rateBytesPerSecond: number } | null;
  startedAt: string;
  endedAt: string;
  targets: ReportTargets;
  steps: ReportStep[];
  machines: ReportMachine[];
  /** RPO per machine as the telemetry sampler saw it during the run (Unix seconds). */
  rpoSamples: { t: number[]; machines: Record<string, Array<number | null>> };
}

/** Whether a figure meets its target: no target is met; a target with no figure is not. */
export function targetMet(target: number | null, value: number | null): boolean {
  if (target === null) return true;
  return value !== null && value <= target;
}

/** Every reason the rehearsal did not pass: steps that did not succeed, proofs, targets. */
export function failuresOf(r: Pick<RehearsalReport, "steps" | "machines" | "targets">): string[] {
  const out: string[] = [];
  for (const s of r.steps) {
    if (s.state !== "succeeded") out.push(`step "${s.name}" ${s.state}${s.message ? `: ${s.message}` : ""}`);
  }
  for (const m of r.machines) {
    for (const p of m.proofs) {
      if (!p.ok) out.push(`${m.name} disk ${p.disk} at "${p.step}" differs from ${againstOf(p)}: ${p.ranges.join(", ") || "whole disk"}`);
    }
    for (const f of figuresOf(m)) {
      const of = f.operation ? ` of the ${f.operation}` : "";
      if (!f.rpoMet) out.push(`${m.name}: RPO${of} ${fmt(f.rpoSeconds)} misses the target of ${r.targets.rpoSeconds} s`);
      if (!f.rtoMet) out.push(`${m.name}: RTO${of} ${fmt(f.rtoSeconds)} misses the target of ${r.targets.rtoSeconds} s`);
    }
  }
  return out;
}

/** What a proof compared the disk with, in words. */
export function againstOf(p: ReportProof): string {
  return p.against ?? `the source at sequence ${p.sequence}`;
}

/** A machine's figures per operation; a report without them has the machine's one pair. */
export function figuresOf(m: ReportMachine): ReportFigure[] {
  if (m.figures?.length) return m.figures;
  return [{ operation: "", rpoSeconds: m.rpoSeconds, rtoSeconds: m.rtoSeconds, rpoMet: m.rpoMet, rtoMet: m.rtoMet }];
}

const fmt = (v: number | null) => (v === null ? "not measured" : `${v.toFixed(1)} s`);

/** One test case per step, per proof and per target, so any CI shows the drill. */
export function renderJunit(r: RehearsalReport): string {
  const seconds = (s: ReportStep) => (s.startedAt && s.endedAt ? (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000 : 0);
  const stepCases = r.steps.map((s) => {
    const body =
      s.state === "succeeded"
        ? ""
        : s.state === "skipped"
          ? `<skipped message="${x(s.message ?? "skipped")}"/>`
          : `<failure message="${x(`${s.state}${s.message ? `: ${s.message}` : ""}`)}" type="${x(s.state)}">${x(s.output ?? "")}</failure>`;
    const out = s.output && s.state === "succeeded" ? `<system-out>${x(s.output)}</system-out>` : "";
    return `    <testcase classname="${x(`rehearsal.${r.plan}.${s.group}`)}" name="${x(s.name)}" time="${seconds(s).toFixed(3)}">${body}${out}</testcase>`;
  });
  const proofCases = r.machines.flatMap((m) =>
    m.proofs.map((p) => {
      const body = p.ok
        ? ""
        : `<failure message="${x(`disk ${p.disk} differs from ${againstOf(p)}: ${p.ranges.join(", ") || "whole disk"}`)}" type="proof">expected ${x(p.expected)}\nactual   ${x(p.actual)}</failure>`;
      return `    <testcase classname="${x(`rehearsal.${r.plan}.proofs.${m.name}`)}" name="${x(`${m.name} disk ${p.disk} at ${p.step}`)}" time="0">${body}</testcase>`;
    }),
  );
  const targetCases = r.machines.flatMap((m) =>
    figuresOf(m).flatMap((f) =>
      (["rpo", "rto"] as const).map((k) => {
        const target = k === "rpo" ? r.targets.rpoSeconds : r.targets.rtoSeconds;
        const value = k === "rpo" ? f.rpoSeconds : f.rtoSeconds;
        const met = k === "rpo" ? f.rpoMet : f.rtoMet;
        const name = `${m.name} ${k.toUpperCase()}${f.operation ? ` of the ${f.operation}` : ""} ${fmt(value)}${target === null ? " (no target)" : ` within ${target} s`}`;
        const body = met ? "" : `<failure message="${x(`${k.toUpperCase()} ${fmt(value)} misses the target of ${target} s`)}" type="target"/>`;
        return `    <testcase classname="${x(`rehearsal.${r.plan}.targets`)}" name="${x(name)}" time="0">${body}</testcase>`;
      }),
    ),
  );
  const suite = (name: string, cases: string[]) => {
    const failures = cases.filter((c) => c.includes("<failure")).length;
    const skipped = cases.filter((c) => c.includes("<skipped")).length;
    return `  <testsuite name="${x(name)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" timestamp="${x(r.startedAt)}">\n${cases.join("\n")}${cases.length ? "\n" : ""}  </testsuite>`;
  };
  const all = [...stepCases, ...proofCases, ...targetCases];
  const failures = all.filter((c) => c.includes("<failure")).length;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${x(`srlab rehearsal ${r.plan} (${r.cycle})`)}" tests="${all.length}" failures="${failures}" errors="0">`,
    suite(`${r.plan} steps`, stepCases),
    suite(`${r.plan} proofs`, proofCases),
    suite(`${r.plan} targets`, targetCases),
    `</testsuites>`,
    "",
  ].join("\n");
}

/** XML text and attribute escaping; characters XML 1.0 forbids (control bytes in output) are dropped. */
function x(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}
