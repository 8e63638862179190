// Tables for bench output: aligned plain text for the terminal, Markdown for the README.

export type Cell = string | number;

/** Aligned text table; numbers (and cells that look like figures) are right-aligned. */
export function textTable(head: string[], rows: Cell[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,]+\s*[^\s]*$|^-$/.test(String(r[i] ?? ""))));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] && i > 0 ? (c ?? "").padStart(widths[i]!) : (c ?? "").padEnd(widths[i]!))).join("  ").trimEnd())
    .join("\n");
}

export function markdownTable(head: string[], rows: Cell[][]): string {
  const line = (r: Cell[]) => `| ${r.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** "12.3" with a fixed number of decimals, "-" for a missing figure. */
export function fixed(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);
}

export function ratio(value: number | undefined, reference: number | undefined): string {
  return value === undefined || reference === undefined || !(reference > 0) ? "-" : `${(value / reference).toFixed(2)}×`;
}
