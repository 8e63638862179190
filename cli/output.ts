import type { ServiceError } from "@grpc/grpc-js";
import { visibleLength } from "./terminal/index.js";

/** Rows as aligned text lines; cells may carry colour (escape codes take no width). */
export function formatTable(headers: string[], rows: Array<Array<string | number>>): string[] {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => visibleLength(r[i] ?? ""))));
  return cells.map((row) =>
    row
      .map((c, i) => (c ?? "") + " ".repeat(widths[i]! - visibleLength(c ?? "")))
      .join("  ")
      .trimEnd(),
  );
}

/** Prints rows as an aligned text table. */
export function printTable(headers: string[], rows: Array<Array<string | number>>): void {
  for (const line of formatTable(headers, rows)) console.log(line);
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** One line that says what went wrong, then a non-zero exit. */
export function fail(err: unknown): never {
  const e = err as Partial<ServiceError> & Error;
  const message = typeof e.code === "number" && e.details ? e.details : (e.message ?? String(err));
  const hint =
    e.code === 14 ? " (is the lab running? start it with srlab up)" : "";
  process.stderr.write(`srlab: ${message}${hint}\n`);
  process.exit(1);
}

/** Enum name without its prefix, lower-case and dashed: HEALTH_NORMAL → normal. */
export function enumLabel(names: Record<number, string>, value: number, prefix: string): string {
  return (names[value] ?? "unknown").replace(prefix, "").toLowerCase().replace(/_/g, "-");
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/** A progress line redrawn in place on a terminal, printed on change otherwise. */
export class ProgressLine {
  private last = "";
  constructor(private readonly enabled = true) {}
  update(text: string): void {
    if (!this.enabled || text === this.last) return;
    this.last = text;
    // One terminal row: a wrapped line would not be cleared by the next update.
    const width = process.stderr.columns || 80;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text.length < width ? text : `${text.slice(0, width - 2)}…`}`);
    else process.stderr.write(`${text}\n`);
  }
  done(): void {
    if (this.enabled && process.stderr.isTTY && this.last) process.stderr.write("\n");
  }
}
