import { html, raw, type SafeHtml } from "./escape.js";

export interface SparklineOptions {
  width?: number;
  height?: number;
  /** Top of the scale; the largest value when absent (a flat line at 0 stays at the bottom). */
  max?: number;
  /** What the line shows, for screen readers and the tooltip. */
  label: string;
}

/**
 * A tiny inline SVG line of recent values (RPO over the last minutes in a table cell). Plain
 * markup, no script: it is re-rendered with the row, prints, and needs nothing from the network.
 * `null` values are gaps.
 */
export function sparkline(values: ReadonlyArray<number | null>, o: SparklineOptions): SafeHtml {
  const w = o.width ?? 120;
  const h = o.height ?? 24;
  const finite = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const top = Math.max(o.max ?? 0, ...finite, 0) || 1;
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  const segments: string[][] = [[]];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (segments[segments.length - 1]!.length) segments.push([]);
      return;
    }
    const y = h - 1 - (Math.max(0, v) / top) * (h - 2);
    segments[segments.length - 1]!.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  const lines = segments
    .filter((s) => s.length > 0)
    .map((s) => (s.length === 1 ? `<circle cx="${s[0]!.split(",")[0]}" cy="${s[0]!.split(",")[1]}" r="1.5"/>` : `<polyline points="${s.join(" ")}"/>`))
    .join("");
  return html`<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${o.label}"><title>${o.label}</title>${raw(lines)}</svg>`;
}
