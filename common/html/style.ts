/** The one stylesheet of srlab's pages: readable on screen and on paper, light and dark. */
export const BASE_CSS = `
:root { --fg:#1d2330; --muted:#5b6475; --bg:#fff; --card:#f5f7fa; --line:#d9dee7;
  --pass:#1a7f37; --fail:#c62828; --warn:#b26a00; --info:#0b5cad; }
@media (prefers-color-scheme: dark) { :root { --fg:#e6e9ef; --muted:#9aa3b2; --bg:#14171c; --card:#1e232b; --line:#333a46; } }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { padding:16px 24px 8px; border-bottom:1px solid var(--line); }
h1 { margin:0; font-size:22px; } h2 { font-size:17px; margin:24px 0 8px; }
.subtitle { margin:4px 0 0; color:var(--muted); }
main { padding:0 24px 32px; max-width:1280px; }
table { border-collapse:collapse; margin:8px 0; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; } td.num, th.num { text-align:right; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
.badge.pass { background:var(--pass); } .badge.fail { background:var(--fail); }
.badge.warn { background:var(--warn); } .badge.info { background:var(--info); }
.figures { display:flex; flex-wrap:wrap; gap:10px; margin:12px 0; }
.figure { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 14px; min-width:140px; }
.figure .label { color:var(--muted); font-size:12px; } .figure .value { font-size:20px; font-weight:600; }
.figure.pass .value { color:var(--pass); } .figure.fail .value { color:var(--fail); } .figure.warn .value { color:var(--warn); }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(560px, 1fr)); gap:16px; }
.chart { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px; min-height:300px; }
.chart h3 { margin:0 0 4px; font-size:14px; } .chart .note { color:var(--muted); font-size:12px; margin:0 0 4px; }
.chart .empty { color:var(--muted); padding:40px 0; text-align:center; }
.timeline { margin:8px 0; }
.timeline .row { display:grid; grid-template-columns:220px 1fr 90px; gap:8px; align-items:center; padding:2px 0; }
.timeline .track { position:relative; height:16px; background:var(--card); border:1px solid var(--line); border-radius:3px; }
.timeline .bar { position:absolute; top:1px; bottom:1px; border-radius:2px; background:var(--info); min-width:2px; }
.timeline .bar.succeeded, .timeline .bar.pass { background:var(--pass); } .timeline .bar.failed, .timeline .bar.fail { background:var(--fail); }
.timeline .bar.skipped, .timeline .bar.warn { background:var(--warn); }
.timeline .dur { text-align:right; color:var(--muted); font-variant-numeric:tabular-nums; }
.timeline .detail { grid-column:1 / -1; color:var(--muted); font-size:12px; padding-left:12px; }
.strip { margin:8px 0 28px; }
.strip-track { position:relative; height:34px; background:var(--card); border:1px solid var(--line); border-radius:3px; }
.strip-range { position:absolute; top:12px; height:10px; background:var(--pass); opacity:.35; border-radius:2px; }
.strip-marker { position:absolute; top:4px; bottom:4px; width:2px; margin-left:-1px; background:var(--info); }
.strip-marker.app-consistent, .strip-marker.tag { background:var(--warn); width:3px; }
.strip-label { position:absolute; top:30px; left:-2px; white-space:nowrap; font-size:11px; color:var(--warn); }
.strip-label.end { left:auto; right:-2px; }
.strip-axis { display:flex; justify-content:space-between; color:var(--muted); font-size:11px; padding-top:14px; }
svg.spark { vertical-align:middle; } svg.spark polyline { fill:none; stroke:var(--info); stroke-width:1.5; } svg.spark circle { fill:var(--info); }
pre { background:var(--card); padding:8px; border-radius:4px; overflow:auto; }
`;
