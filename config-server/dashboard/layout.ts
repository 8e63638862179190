import { html, raw, renderPage, type SafeHtml } from "../../common/html/index.js";
import type { TelemetrySample } from "../../proto/index.js";
import { LIVE_SCRIPT } from "./live-script.js";

/** A part of a page: a live region (re-rendered on every sample, sent when it changed) or fixed markup. */
export type Part = { region: string; render: () => SafeHtml } | { fixed: () => SafeHtml };

/** One new sample for a chart on the page. */
export interface ChartPoint {
  id: string;
  x: number;
  values: Array<number | null>;
}

export interface DashboardPage {
  title: string;
  parts: Part[];
  /** Inline uPlot (the page has charts). */
  charts?: boolean;
  /** What the page's charts gain from a new sample (and the one before it, for rates). */
  chartPoints?: (sample: TelemetrySample, previous: TelemetrySample | undefined) => ChartPoint[];
}

/**
 * The dashboard's policy: scripts and styles only inline (served with the page, from the
 * package), nothing from any other origin; the one connection is the page's own event stream.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'";
/** Action pages (dashboard.actions) may post their one form back to the dashboard, and nothing else. */
export const DASHBOARD_ACTION_CSP = DASHBOARD_CSP.replace("form-action 'none'", "form-action 'self'");
/** The header form adds what a meta element cannot carry. */
export const DASHBOARD_CSP_HEADER = `${DASHBOARD_CSP}; frame-ancestors 'none'`;

const NAV: Array<[string, string]> = [
  ["/", "Topology"],
  ["/machines", "Machines"],
  ["/process-servers", "Process servers"],
  ["/jobs", "Jobs"],
  ["/alerts", "Alerts"],
];

const CSS = `
nav.top { display:flex; gap:14px; align-items:center; margin-bottom:8px; flex-wrap:wrap; }
nav.top a { color:var(--info); text-decoration:none; font-weight:600; } nav.top a.here { color:var(--fg); border-bottom:2px solid var(--info); }
nav.top .brand { font-weight:700; margin-right:8px; } nav.top .spacer { flex:1; }
.reason { color:var(--muted); font-size:12px; } .code { font-family:ui-monospace, monospace; font-size:11px; }
td a, .card a { color:var(--info); }
.topology { display:grid; grid-template-columns:1fr 40px 1fr 40px 1fr; gap:8px; align-items:start; margin:12px 0; }
.topology .lane { display:flex; flex-direction:column; gap:8px; } .topology .lane h3 { margin:0; font-size:13px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.topology .arrow { align-self:center; text-align:center; font-size:26px; color:var(--muted); }
.topology .way-back { grid-column:1 / -1; border-top:1px dashed var(--line); padding-top:8px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.card .title { font-weight:600; display:flex; justify-content:space-between; gap:8px; }
.card dl { display:grid; grid-template-columns:auto 1fr; gap:0 8px; margin:4px 0 0; font-size:12px; } .card dt { color:var(--muted); } .card dd { margin:0; overflow-wrap:anywhere; }
.card.critical { border-color:var(--fail); } .card.warning { border-color:var(--warn); }
.bar { position:relative; width:160px; height:12px; background:var(--card); border:1px solid var(--line); border-radius:3px; display:inline-block; vertical-align:middle; }
.bar .fill { position:absolute; left:0; top:0; bottom:0; background:var(--info); }
.bar .mark { position:absolute; top:-2px; bottom:-2px; width:2px; } .bar .mark.warning { background:var(--warn); } .bar .mark.critical { background:var(--fail); }
details.job summary { cursor:pointer; }
`;

function nav(path: string): SafeHtml {
  return html`<nav class="top"><span class="brand">srlab</span>${NAV.map(([href, label]) => {
    const here = href === "/" ? path === "/" : path === href || path.startsWith(`${href}/`);
    return html`<a href="${href}"${here ? raw(' class="here"') : ""}>${label}</a>`;
  })}<span class="spacer"></span><span id="live-state" class="badge info">connecting</span></nav>`;
}

/** The whole page as first served: every part rendered, regions wrapped so the live script finds them. */
export function renderDashboardPage(page: DashboardPage, path: string): string {
  const body = page.parts.map((p) => ("region" in p ? html`<div id="r-${p.region}" data-region="${p.region}">${p.render()}</div>` : p.fixed()));
  return renderPage({
    title: page.title,
    body,
    nav: nav(path),
    charts: page.charts,
    css: CSS,
    csp: DASHBOARD_CSP,
    scripts: [LIVE_SCRIPT],
  });
}

/** The regions of a page as markup, for the event stream. */
export function renderRegions(page: DashboardPage): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of page.parts) if ("region" in p) out.set(p.region, p.render().value);
  return out;
}
