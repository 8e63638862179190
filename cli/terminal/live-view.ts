import { pause } from "../../common/async/index.js";
import { truncateVisible } from "./ansi.js";

/**
 * A block of lines redrawn in place on a terminal (cursor back to the block's first line, each line
 * rewritten and cleared to its end); on anything else each frame is printed after the last one,
 * so logs and pipes get plain repeated output.
 */
export class LiveView {
  private drawn = 0;
  readonly inPlace: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.inPlace = Boolean(out.isTTY);
  }

  draw(lines: readonly string[]): void {
    if (!this.inPlace) {
      this.out.write(`${lines.join("\n")}\n\n`);
      return;
    }
    // Lines wider than the terminal would wrap and throw the cursor arithmetic off: cut them.
    const columns = this.out.columns || 120;
    let frame = this.drawn > 0 ? `\x1b[${this.drawn}F` : "\x1b[?25l";
    for (const line of lines) frame += `${truncateVisible(line, columns)}\x1b[K\n`;
    frame += "\x1b[J";
    this.out.write(frame);
    this.drawn = lines.length;
  }

  /** Leaves the last frame on screen and gives the cursor back. */
  close(): void {
    if (this.inPlace && this.drawn > 0) this.out.write("\x1b[?25h");
    this.drawn = 0;
  }
}

export interface WatchOptions {
  intervalMs: number;
  /** Stops the loop (Ctrl-C, or the caller is done). */
  signal?: AbortSignal;
  /** Called with a frame's error instead of stopping: a lab that is briefly unreachable is shown, not fatal. */
  onError?: (err: unknown) => readonly string[];
}

/** Draws `frame()` every interval until the signal aborts or `frame` returns undefined (nothing more to show). */
export async function watch(view: LiveView, frame: () => Promise<readonly string[] | undefined>, options: WatchOptions): Promise<void> {
  try {
    while (!options.signal?.aborted) {
      let lines: readonly string[] | undefined;
      try {
        lines = await frame();
      } catch (err) {
        if (!options.onError) throw err;
        lines = options.onError(err);
      }
      if (lines === undefined) return;
      view.draw(lines);
      if (!(await pause(options.intervalMs, options.signal))) return; // aborted while waiting
    }
  } finally {
    view.close();
  }
}

/** An AbortSignal that fires on Ctrl-C or SIGTERM; `dispose` removes the handlers. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    },
  };
}
