import {
  badge,
  chart,
  figures,
  formatDuration,
  html,
  renderPage,
  type SafeHtml,
  section,
  table,
  timeline,
} from "../../common/html/index.js";
import { againstOf, figuresOf, type RehearsalReport, type ReportFigure, type ReportMachine, type ReportProof, type ReportStep } from "./rehearsal-report.js";

/**
 * report.html: one self-contained page (common/html: inline CSS and uPlot, nothing fetched) with
 * the verdict, a timeline of the steps per group and machine, RPO/RTO against the targets, the
 * RPO the sampler saw during the run, the proofs table and every action's output.
 */
export function renderRehearsalHtml(r: RehearsalReport): string {
  const proofs = r.machines.flatMap((m) => m.proofs.map((p) => ({ machine: m.name, ...p })));
  const held = proofs.filter((p) => p.ok).length;
  const succeeded = r.steps.filter((s) => s.state === "succeeded").length;
  const worst = (k: "rpoSeconds" | "rtoSeconds") => {
    const v = r.machines.map((m) => m[k]).filter((n): n is number => n !== null);
    return v.length ? Math.max(...v) : null;
  };
  const seconds = (v: number | null) => (v === null ? "–" : `${v.toFixed(1)} s`);
  const body: SafeHtml[] = [
    html`<p>${badge(r.result === "passed" ? "PASSED" : "FAILED", r.result === "passed" ? "pass" : "fail")} ${r.cycle} cycle of plan <b>${r.plan}</b>, run ${r.runId}${r.scheduled ? " (scheduled)" : ""}</p>`,
    figures([
      { label: "steps succeeded", value: `${succeeded} / ${r.steps.length}`, kind: succeeded === r.steps.length ? "pass" : "fail" },
      { label: "proofs held", value: `${held} / ${proofs.length}`, kind: held === proofs.length && proofs.length > 0 ? "pass" : "fail" },
      { label: `worst RPO${r.targets.rpoSeconds === null ? "" : ` (target ${r.targets.rpoSeconds} s)`}`, value: seconds(worst("rpoSeconds")), kind: r.targets.rpoMet ? "pass" : "fail" },
      { label: `worst RTO${r.targets.rtoSeconds === null ? "" : ` (target ${r.targets.rtoSeconds} s)`}`, value: seconds(worst("rtoSeconds")), kind: r.targets.rtoMet ? "pass" : "fail" },
      { label: "duration", value: formatDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt)) },
    ]),
  ];
  if (r.failures.length) body.push(section("Why it failed", html`<ul class="failures">${r.failures.map((f) => html`<li>${f}</li>`)}</ul>`, "failures"));
  body.push(section("Timeline", timelines(r), "timeline"));
  body.push(
    section(
      "Steps",
      table<ReportStep>(
        [
          { header: "Step", cell: (s) => s.name },
          { header: "Group", cell: (s) => s.group },
          { header: "Machine", cell: (s) => s.machine ?? "" },
          { header: "State", cell: (s) => html`<span class="state ${s.state}">${s.state}</span>` },
          { header: "Started", cell: (s) => s.startedAt?.slice(11, 23) ?? "" },
          { header: "Duration", cell: (s) => (s.startedAt && s.endedAt ? formatDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt)) : ""), numeric: true },
          { header: "Message", cell: (s) => s.message ?? "" },
        ],
        r.steps,
      ),
      "steps",
    ),
  );
  body.push(section("RPO and RTO against the targets", [targetsTable(r), rpoChart(r)], "targets"));
  body.push(
    section(
      "Proofs",
      [
        html`<p class="note">Each recovered disk's fingerprint (docs/fingerprint.md) recomputed from storage, against the source's at the same sequence (after a failback: each on-premises disk against the Azure disk it came back from).</p>`,
        table<ReportProof & { machine: string }>(
          [
            { header: "Machine", cell: (p) => p.machine },
            { header: "Disk", cell: (p) => p.disk, numeric: true },
            { header: "Step", cell: (p) => p.step },
            { header: "Against", cell: (p) => againstOf(p) },
            { header: "Expected", cell: (p) => html`<code>${p.expected || "–"}</code>` },
            { header: "Actual", cell: (p) => html`<code>${p.actual || "–"}</code>` },
            { header: "Result", cell: (p) => (p.ok ? badge("holds", "pass") : html`${badge("differs", "fail")} ${p.ranges.join(", ") || "whole disk"}`) },
          ],
          proofs,
          "no proofs were checked",
        ),
      ],
      "proofs",
    ),
  );
  const outputs = r.steps.filter((s) => s.output);
  body.push(
    section(
      "Action output",
      outputs.length ? outputs.map((s) => html`<h3>${s.name}</h3><pre class="output">${s.output ?? ""}</pre>`) : html`<p class="empty">no action produced output</p>`,
      "output",
    ),
  );
  return renderPage({
    title: `srlab rehearsal: ${r.plan} (${r.cycle})`,
    subtitle: `${r.startedAt} – ${r.endedAt} · network ${r.network || "–"}${r.workload ? ` · workload ${r.workload.name} at ${(r.workload.rateBytesPerSecond / 1e6).toFixed(1)} MB/s per machine` : " · no workload"}`,
    charts: true,
    css: "pre.output { background:var(--card); border:1px solid var(--line); padding:8px; overflow:auto; max-height:320px; } ul.failures li { color:var(--fail); } code { font-size:11px; word-break:break-all; } .timeline h3 { margin:12px 0 4px; }",
    body,
  });
}

/** One timeline per group on one shared axis, each bar named by machine and step. */
function timelines(r: RehearsalReport): SafeHtml {
  const ran = r.steps.filter((s) => s.startedAt);
  if (ran.length === 0) return html`<p class="empty">no step ran</p>`;
  const startMs = Math.min(...ran.map((s) => Date.parse(s.startedAt!)));
  const endMs = Math.max(Date.parse(r.endedAt), ...ran.map((s) => Date.parse(s.endedAt ?? s.startedAt!)));
  const groups = [...new Set(r.steps.map((s) => s.group))];
  return html`${groups.map((g) => {
    const steps = ran.filter((s) => s.group === g);
    if (steps.length === 0) return html``;
    return html`<h3>${g}</h3>${timeline(
      steps.map((s) => ({
        name: s.machine ? `${s.machine} · ${s.name}` : s.name,
        startMs: Date.parse(s.startedAt!),
        endMs: s.endedAt ? Date.parse(s.endedAt) : undefined,
        state: s.state,
        detail: s.state === "succeeded" ? undefined : (s.message ?? undefined),
      })),
      { startMs, endMs },
    )}`;
  })}`;
}

function targetsTable(r: RehearsalReport): SafeHtml {
  const verdict = (met: boolean, target: number | null) => (target === null ? badge("no target", "info") : met ? badge("met", "pass") : badge("missed", "fail"));
  const s = (v: number | null) => (v === null ? "–" : `${v.toFixed(1)} s`);
  // One row per machine and failover or failback the cycle ran (a test cycle has one each).
  const rows = r.machines.flatMap((m) => figuresOf(m).map((f) => ({ m, f })));
  return table<{ m: ReportMachine; f: ReportFigure }>(
    [
      { header: "Machine", cell: ({ m }) => m.name },
      { header: "Group", cell: ({ m }) => m.group },
      { header: "Operation", cell: ({ f }) => f.operation || "–" },
      { header: "Recovery point", cell: ({ m, f }) => (f.operation === "test-failover" || !f.operation ? m.recoveryPointId || "–" : "–") },
      { header: "RPO", cell: ({ f }) => s(f.rpoSeconds), numeric: true },
      { header: `RPO target ${r.targets.rpoSeconds === null ? "" : `${r.targets.rpoSeconds} s`}`, cell: ({ f }) => verdict(f.rpoMet, r.targets.rpoSeconds) },
      { header: "RTO", cell: ({ f }) => s(f.rtoSeconds), numeric: true },
      { header: `RTO target ${r.targets.rtoSeconds === null ? "" : `${r.targets.rtoSeconds} s`}`, cell: ({ f }) => verdict(f.rtoMet, r.targets.rtoSeconds) },
    ],
    rows,
  );
}

function rpoChart(r: RehearsalReport): SafeHtml {
  const { t, machines } = r.rpoSamples;
  if (t.length < 2) return html`<p class="empty">the telemetry sampler took fewer than two samples during the run</p>`;
  return chart({
    id: "rpo",
    title: "RPO during the rehearsal",
    note: "Age of the oldest write not yet in storage, per machine, from the configuration server's telemetry sampler.",
    x: t,
    xKind: "time",
    unit: "s",
    series: Object.entries(machines).map(([label, values]) => ({ label, values })),
    thresholds: r.targets.rpoSeconds === null ? [] : [{ label: "RPO target", value: r.targets.rpoSeconds, level: "target" }],
  });
}
