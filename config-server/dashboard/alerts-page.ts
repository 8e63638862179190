import { formatDuration, html, type SafeHtml, section, table } from "../../common/html/index.js";
import type { DashboardPage } from "./layout.js";
import { type AlertEvent, alertHistory } from "./alert-history.js";
import { clock, healthBadge, healthWithReasons } from "./labels.js";
import type { Snapshot } from "./snapshot.js";

/** Alerts raised and cleared (with times) over the sampler's window, and every current health issue. */
export function alertsPage(snap: Snapshot): DashboardPage {
  return {
    title: "Alerts",
    parts: [
      { region: "history", render: () => section("Raised and cleared", history(snap)) },
      { region: "issues", render: () => section("Health issues now", issues(snap)) },
    ],
  };
}

function history(snap: Snapshot): SafeHtml {
  const now = snap.nowMs;
  const windowMinutes = Math.round(snap.source.sampler.windowSeconds / 60);
  return html`<p class="reason">From the configuration server's samples of the last ${windowMinutes} min; older alerts are not kept.</p>${table<AlertEvent>(
    [
      { header: "level", cell: (a) => healthBadge(a.level) },
      { header: "source", cell: (a) => a.source },
      { header: "alert", cell: (a) => html`${a.message}<div class="code">${a.code}</div>` },
      { header: "raised (UTC)", cell: (a) => clock(a.raisedAt, now) },
      { header: "cleared (UTC)", cell: (a) => (a.clearedAt ? clock(a.clearedAt, now) : html`<strong data-alert-active="true">active</strong>`) },
      { header: "lasted", numeric: true, cell: (a) => formatDuration((a.clearedAt?.getTime() ?? now) - a.raisedAt.getTime()) },
    ],
    alertHistory(snap.samples()),
    "no alerts in the window",
  )}`;
}

function issues(snap: Snapshot): SafeHtml {
  const rows = [
    ...snap.components().filter((c) => c.issues.length).map((c) => ({ name: c.name, kind: "component", health: c.health, issues: c.issues })),
    ...snap.machines().filter((m) => m.issues.length).map((m) => ({ name: m.name, kind: "machine", health: m.health, issues: m.issues })),
  ];
  return table(
    [
      { header: "what", cell: (r: (typeof rows)[number]) => `${r.kind} ${r.name}` },
      { header: "health and reasons", cell: (r) => healthWithReasons(r.health, r.issues) },
    ],
    rows,
    "every component and machine is healthy",
  );
}
