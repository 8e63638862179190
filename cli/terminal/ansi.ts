// Terminal text: colour only where a person reads it, and widths that ignore escape codes.

const ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Whether to colour output written to this stream: a terminal, unless NO_COLOR or TERM=dumb says not. */
export function wantsColour(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !("NO_COLOR" in process.env) && process.env.TERM !== "dumb";
}

export interface Palette {
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const sgr = (code: number) => (text: string) => `\x1b[${code}m${text}\x1b[0m`;
const plain = (text: string) => text;

/** Colour functions, or identity functions when colour is off. */
export function palette(enabled: boolean): Palette {
  return enabled
    ? { green: sgr(32), yellow: sgr(33), red: sgr(31), dim: sgr(2), bold: sgr(1) }
    : { green: plain, yellow: plain, red: plain, dim: plain, bold: plain };
}

/** Width of text as a terminal shows it (escape codes take no columns). */
export function visibleLength(text: string): number {
  return text.replace(ESCAPE, "").length;
}

/** Cuts text to at most `columns` visible characters, keeping escape codes whole and resetting at the cut. */
export function truncateVisible(text: string, columns: number): string {
  if (visibleLength(text) <= columns) return text;
  let out = "";
  let shown = 0;
  for (let i = 0; i < text.length && shown < columns; ) {
    ESCAPE.lastIndex = i;
    const m = text[i] === "\x1b" ? ESCAPE.exec(text) : null;
    if (m && m.index === i) {
      out += m[0];
      i += m[0].length;
    } else {
      out += text[i];
      shown++;
      i++;
    }
  }
  return `${out}\x1b[0m`;
}
