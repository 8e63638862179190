import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { html, type SafeHtml, scriptJson } from "./escape.js";
import { CHART_RUNTIME } from "./chart-runtime.js";

/** How axis values and legend values are written. */
export type ChartUnit = "bytes" | "bytes/s" | "s" | "ms" | "%" | "count";

export interface ChartSeries {
  label: string;
  /** One value per x; `null` is a gap (no sample), never drawn as zero. */
  values: ReadonlyArray<number | null>;
  color?: string;
  /** Dashed line: the older run of a comparison. */
  dashed?: boolean;
}

/** A horizontal line at an alert or threshold level (cache free 30%, backlog 30 min, …). */
export interface ChartThreshold {
  label: string;
  value: number;
  level: "warning" | "critical" | "target";
}

export interface ChartSpec {
  /** Unique in the page; also the element id (`chart-ID`), which tests look for. */
  id: string;
  title: string;
  /** One line under the title: what the chart shows and how to read it. */
  note?: string;
  /**
   * X values, ascending: seconds since the start of the run (`elapsed`, the default — two runs
   * line up for comparison), Unix seconds (`time`), or bucket indexes named by `xLabels`.
   */
  x: readonly number[];
  xKind?: "elapsed" | "time" | "category";
  xLabels?: readonly string[];
  unit: ChartUnit;
  series: readonly ChartSeries[];
  thresholds?: readonly ChartThreshold[];
  /** `bars` for distributions; lines otherwise. */
  kind?: "line" | "bars";
  /** A live chart (samples appended in the page) keeps at most this many x values (default 3600). */
  maxPoints?: number;
}

/**
 * A chart container; the page draws it with uPlot when it loads (add {@link chartAssets} to
 * the page). uPlot because it is made for exactly this — time series from many one-second
 * samples: ~50 KB minified with no dependencies (so it can be inlined into every report),
 * draws tens of thousands of points on a canvas without lag, takes columnar arrays like the
 * samples we keep, MIT-licensed and maintained. Observable Plot needs d3 (several times the
 * size) and ECharts is about a megabyte.
 */
export function chart(spec: ChartSpec): SafeHtml {
  if (spec.series.some((s) => s.values.length !== spec.x.length)) {
    throw new Error(`chart ${spec.id}: every series needs one value per x (${spec.x.length})`);
  }
  return html`<div class="chart" id="chart-${spec.id}" data-chart="${spec.id}"><h3>${spec.title}</h3>${spec.note ? html`<p class="note">${spec.note}</p>` : ""}<div class="plot"></div><script type="application/json">${scriptJson(spec)}</script></div>`;
}

/** Charts side by side in a responsive grid. */
export function chartGrid(specs: readonly ChartSpec[]): SafeHtml {
  return html`<div class="charts">${specs.map(chart)}</div>`;
}

let uplotCache: { js: string; css: string } | undefined;

/** uPlot's script and stylesheet, read from node_modules once per process. */
function uplotSource(): { js: string; css: string } {
  if (!uplotCache) {
    const require = createRequire(import.meta.url);
    const dir = require.resolve("uplot/dist/uPlot.iife.min.js").replace(/uPlot\.iife\.min\.js$/, "");
    uplotCache = {
      js: readFileSync(`${dir}uPlot.iife.min.js`, "utf8"),
      css: readFileSync(`${dir}uPlot.min.css`, "utf8"),
    };
  }
  return uplotCache;
}

/** What a page with charts inlines: uPlot's CSS, uPlot itself and the script that draws them. */
export function chartAssets(): { css: string; scripts: string[] } {
  const u = uplotSource();
  return { css: u.css, scripts: [u.js, CHART_RUNTIME] };
}
