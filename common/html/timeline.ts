import { html, raw, type SafeHtml } from "./escape.js";
import { formatDuration } from "./format.js";

export interface TimelineStep {
  name: string;
  startMs: number;
  /** Absent while the step runs; the bar then reaches the end of the timeline. */
  endMs?: number;
  /** `succeeded`, `failed`, `skipped`, `running`, `pass`, `fail`, … — also the bar's class. */
  state: string;
  /** One line under the step (its message, what it proved). */
  detail?: string;
}

/**
 * Steps as bars on one shared time axis (a Gantt strip): what ran when, for how long, and how
 * it ended. Plain HTML and CSS, so it needs no script and prints.
 */
export function timeline(steps: readonly TimelineStep[], range?: { startMs: number; endMs: number }): SafeHtml {
  if (steps.length === 0) return html`<p class="empty">no steps</p>`;
  const start = range?.startMs ?? Math.min(...steps.map((s) => s.startMs));
  const end = range?.endMs ?? Math.max(...steps.map((s) => s.endMs ?? s.startMs));
  const span = Math.max(1, end - start);
  const pct = (ms: number) => Math.min(100, Math.max(0, ((ms - start) / span) * 100)).toFixed(2);
  return html`<div class="timeline">${steps.map((s) => {
    const stepEnd = s.endMs ?? end;
    const left = pct(s.startMs);
    const width = Math.max(0, Number(pct(stepEnd)) - Number(left)).toFixed(2);
    const cls = s.state.replace(/[^a-z0-9-]/gi, "");
    return html`<div class="row" data-state="${s.state}"><div class="name">${s.name}</div><div class="track"><div class="bar ${cls}" style="${raw(`left:${left}%;width:${width}%`)}" title="${s.state}"></div></div><div class="dur">${s.endMs === undefined ? s.state : formatDuration(stepEnd - s.startMs)}</div>${s.detail ? html`<div class="detail">${s.detail}</div>` : ""}</div>`;
  })}</div>`;
}
