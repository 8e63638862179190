import { html, raw, type SafeHtml } from "./escape.js";

/** A span of time drawn as a band (the recoverable range). */
export interface StripRange {
  fromMs: number;
  toMs: number;
  label: string;
  /** Also the band's class and `data-kind`. */
  kind: string;
}

/** One moment on the strip (a recovery point); `label` is written beside markers that have `named`. */
export interface StripMarker {
  atMs: number;
  label: string;
  kind: string;
  /** Write the label on the strip (tags); other markers show it on hover only. */
  named?: boolean;
  /** Extra attributes a test or a script can find the marker by. */
  data?: Record<string, string | number>;
}

const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/**
 * Moments and ranges on one time axis: recovery points on a timeline with the range a machine
 * can be recovered to. Plain HTML and CSS (positions in percent), like {@link timeline}.
 */
export function markerStrip(o: { startMs: number; endMs: number; ranges: readonly StripRange[]; markers: readonly StripMarker[]; empty?: string }): SafeHtml {
  if (o.markers.length === 0 && o.ranges.length === 0) return html`<p class="empty">${o.empty ?? "nothing yet"}</p>`;
  const span = Math.max(1, o.endMs - o.startMs);
  const pct = (ms: number) => Math.min(100, Math.max(0, ((ms - o.startMs) / span) * 100));
  const cls = (k: string) => k.replace(/[^a-z0-9-]/gi, "");
  const attrs = (d: Record<string, string | number> | undefined) =>
    Object.entries(d ?? {})
      .filter(([k]) => /^[a-z][a-z0-9-]*$/.test(k))
      .map(([k, v]) => html` data-${raw(k)}="${String(v)}"`);
  return html`<div class="strip"><div class="strip-track">${o.ranges.map((r) => {
    const left = pct(r.fromMs);
    const width = Math.max(0.3, pct(r.toMs) - left);
    return html`<div class="strip-range ${cls(r.kind)}" data-kind="${r.kind}" style="${raw(`left:${left.toFixed(2)}%;width:${width.toFixed(2)}%`)}" title="${r.label}: ${clock(r.fromMs)} – ${clock(r.toMs)}"></div>`;
  })}${o.markers.map(
    (m) =>
      html`<div class="strip-marker ${cls(m.kind)}" data-kind="${m.kind}" data-label="${m.label}"${attrs(m.data)} style="${raw(`left:${pct(m.atMs).toFixed(2)}%`)}" title="${m.label} (${clock(m.atMs)})">${m.named ? html`<span class="strip-label${pct(m.atMs) > 70 ? raw(" end") : ""}">${m.label}</span>` : ""}</div>`,
  )}</div><div class="strip-axis"><span>${clock(o.startMs)}</span><span>${clock(o.endMs)}</span></div></div>`;
}
