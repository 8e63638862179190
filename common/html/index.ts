/**
 * Self-contained offline HTML pages for reports (load tests, rehearsals) and dashboards:
 * escaping by construction, one page shell with inline CSS and a strict no-network CSP,
 * tables, a step timeline and uPlot charts inlined from node_modules.
 */
export { html, raw, escapeHtml, scriptJson, SafeHtml } from "./escape.js";
export { renderPage, section, badge, figures, OFFLINE_CSP, type PageOptions } from "./page.js";
export { table, type Column } from "./table.js";
export { timeline, type TimelineStep } from "./timeline.js";
export { chart, chartGrid, chartAssets, type ChartSpec, type ChartSeries, type ChartThreshold, type ChartUnit } from "./chart.js";
export { sparkline, type SparklineOptions } from "./sparkline.js";
export { markerStrip, type StripMarker, type StripRange } from "./marker-strip.js";
export { formatBytes, formatRate, formatDuration, formatPercent } from "./format.js";
