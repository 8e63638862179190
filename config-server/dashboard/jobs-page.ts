import { formatBytes, formatDuration, html, type SafeHtml, table, timeline } from "../../common/html/index.js";
import { jobTypes } from "../../common/enum-names/index.js";
import { type Job, JobState } from "../../proto/index.js";
import type { DashboardPage } from "./layout.js";
import { clock, enumLabel } from "./labels.js";
import type { Snapshot } from "./snapshot.js";

/** Jobs shown on the jobs page (newest first); older ones stay in `srlab jobs`. */
const MAX_JOBS = 100;

export function jobState(state: JobState): string {
  return enumLabel(JobState, state, "JOB_STATE_");
}

function duration(job: Job, nowMs: number): string {
  if (!job.startTime) return "–";
  return formatDuration((job.endTime?.getTime() ?? nowMs) - job.startTime.getTime());
}

/** Jobs with their steps as a timeline (what ran when, for how long), newest first. */
export function jobList(jobs: readonly Job[], snap: Snapshot, empty = "no jobs yet"): SafeHtml {
  const now = snap.nowMs;
  const newest = [...jobs].sort((a, b) => (b.startTime?.getTime() ?? 0) - (a.startTime?.getTime() ?? 0)).slice(0, MAX_JOBS);
  const machineName = (id: string) => snap.machines().find((m) => m.machineId === id)?.name ?? id;
  return table<Job>(
    [
      {
        header: "job",
        cell: (j) =>
          html`<details class="job" data-job="${j.jobId}"${j.state === JobState.JOB_STATE_IN_PROGRESS ? html` open` : ""}><summary>${jobTypes.name(j.type)}</summary><div class="reason">${j.jobId}</div>${timeline(
            j.steps
              .filter((s) => s.startTime)
              .map((s) => ({
                name: s.name,
                startMs: s.startTime!.getTime(),
                endMs: s.endTime?.getTime(),
                state: jobState(s.state),
                detail: s.message || undefined,
              })),
            j.startTime ? { startMs: j.startTime.getTime(), endMs: j.endTime?.getTime() ?? now } : undefined,
          )}</details>`,
      },
      { header: "machine", cell: (j) => (j.machineId ? html`<a href="/machines/${encodeURIComponent(machineName(j.machineId))}">${machineName(j.machineId)}</a>` : "–") },
      { header: "state", cell: (j) => html`<span data-job-state="${jobState(j.state)}">${jobState(j.state)}</span>${j.error ? html`<div class="reason">${j.error}</div>` : ""}` },
      { header: "progress", numeric: true, cell: (j) => `${j.progressPercent.toFixed(0)}%` },
      {
        header: "step",
        cell: (j) => {
          const s = j.steps.find((x) => x.state === JobState.JOB_STATE_IN_PROGRESS);
          return s ? `${s.name} ${s.progressPercent.toFixed(0)}%` : `${j.steps.filter((x) => x.state === JobState.JOB_STATE_SUCCEEDED).length}/${j.steps.length} done`;
        },
      },
      { header: "started (UTC)", cell: (j) => clock(j.startTime, now) },
      { header: "duration", numeric: true, cell: (j) => duration(j, now) },
      { header: "sent", numeric: true, cell: (j) => (j.bytesSent ? formatBytes(j.bytesSent) : "–") },
      {
        header: "reports",
        cell: (j) =>
          j.reports.length
            ? html`${j.reports.map((r, i) => html`${i ? " " : ""}<a href="/jobs/${j.jobId}/${r}" data-report="${r}" target="_blank" rel="noopener">${r}</a>`)}`
            : "–",
      },
    ],
    newest,
    empty,
  );
}

/** Every job of the deployment: steps, progress, durations. */
export function jobsPage(snap: Snapshot): DashboardPage {
  return { title: "Jobs", parts: [{ region: "jobs", render: () => jobList(snap.jobs(), snap) }] };
}
