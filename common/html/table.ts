import { html, type SafeHtml } from "./escape.js";

export interface Column<R> {
  header: string;
  /** The cell: text and numbers are escaped, {@link SafeHtml} is inserted as it is. */
  cell: (row: R) => string | number | SafeHtml;
  /** Right-aligned (figures). */
  numeric?: boolean;
}

/** A table of rows; `empty` is shown in place of a table without rows. */
export function table<R>(columns: ReadonlyArray<Column<R>>, rows: readonly R[], empty = "none"): SafeHtml {
  if (rows.length === 0) return html`<p class="empty">${empty}</p>`;
  const th = (c: Column<R>) => (c.numeric ? html`<th class="num">${c.header}</th>` : html`<th>${c.header}</th>`);
  const td = (c: Column<R>, r: R) => (c.numeric ? html`<td class="num">${c.cell(r)}</td>` : html`<td>${c.cell(r)}</td>`);
  return html`<table><thead><tr>${columns.map(th)}</tr></thead><tbody>${rows.map(
    (r) => html`<tr>${columns.map((c) => td(c, r))}</tr>`,
  )}</tbody></table>`;
}
