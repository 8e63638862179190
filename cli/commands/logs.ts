import { open, stat } from "node:fs/promises";
import { pause } from "../../common/async/index.js";
import { AdminClient } from "../admin-client.js";
import { LabLayout } from "../lab/index.js";
import { interruptSignal, type Palette, palette, wantsColour } from "../terminal/index.js";

/** winston's levels, most severe first: `--level warn` shows error and warn. */
const LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"];

export interface LogFilter {
  /** Least severe level shown. */
  level?: string;
  /** Only lines about this machine: one of these names or ids appears as a field value. */
  machine?: readonly string[];
}

export interface LogsOptions extends Omit<LogFilter, "machine"> {
  /** A machine's name or id; the lab (when reachable) supplies the other. */
  machine?: string;
  follow?: boolean;
  /** Only the last N lines before following. */
  tail?: number;
  json?: boolean;
}

interface LogLine {
  raw: string;
  /** Parsed when the line is a winston JSON record; undefined for anything else (a crash trace). */
  record?: Record<string, unknown>;
}

function parse(raw: string): LogLine {
  if (!raw.startsWith("{")) return { raw };
  try {
    const record = JSON.parse(raw) as unknown;
    return record && typeof record === "object" ? { raw, record: record as Record<string, unknown> } : { raw };
  } catch {
    return { raw };
  }
}

export function checkLevel(level: string): string {
  if (!LEVELS.includes(level)) throw new Error(`--level ${level}: not a log level (one of ${LEVELS.join(", ")})`);
  return level;
}

/** Whether a line passes the filter. Lines that are not records (crash traces) pass a level filter but not a machine filter. */
export function matches(line: LogLine, filter: LogFilter): boolean {
  if (filter.level && line.record) {
    const at = LEVELS.indexOf(String(line.record.level));
    if (at > LEVELS.indexOf(filter.level)) return false;
  }
  if (filter.machine) {
    if (!line.record) return false;
    const wanted = filter.machine;
    const about = Object.entries(line.record).some(([key, value]) => key !== "message" && typeof value === "string" && wanted.includes(value));
    if (!about) return false;
  }
  return true;
}

function levelCell(level: string, colours: Palette): string {
  const text = level.toUpperCase().padEnd(5);
  if (level === "error") return colours.red(text);
  if (level === "warn") return colours.yellow(text);
  if (level === "info") return colours.green(text);
  return colours.dim(text);
}

/** `12:01:02.345 INFO  [process-server-1] message key=value …` from a winston JSON record. */
export function prettyLine(line: LogLine, colours: Palette): string {
  if (!line.record) return line.raw;
  const { timestamp, level, message, component, ...rest } = line.record;
  const time = typeof timestamp === "string" ? timestamp.replace(/^.*T/, "").replace(/Z$/, "") : "";
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${colours.dim(time)} ${levelCell(String(level ?? ""), colours)} [${component ?? "?"}] ${message ?? ""}${extra ? ` ${colours.dim(extra)}` : ""}`;
}

/** The log file of a lab component, or one clear line naming the components there are. */
export function logFileOf(dir: string, component: string): string {
  const manifest = new LabLayout(dir).read();
  const found = manifest.components.find((c) => c.name === component);
  if (!found) throw new Error(`no component "${component}" in the lab in ${dir} (components: ${manifest.components.map((c) => c.name).join(", ")})`);
  return found.logFile;
}

/**
 * `srlab logs COMPONENT`: the component's winston JSON log, pretty-printed (or as JSON lines with
 * --json), filtered by level and machine; with --follow, new lines as they are written until Ctrl-C.
 */
export async function logs(
  dir: string,
  component: string,
  options: LogsOptions,
  out: NodeJS.WritableStream = process.stdout,
  /** Ends --follow; Ctrl-C when not given. */
  signal?: AbortSignal,
): Promise<void> {
  if (options.level) checkLevel(options.level);
  const file = logFileOf(dir, component);
  const colours = palette(!options.json && wantsColour(process.stdout));
  const filter: LogFilter = { level: options.level, machine: options.machine ? await machineAliases(dir, options.machine) : undefined };
  const show = (raw: string) => {
    const line = parse(raw);
    if (matches(line, filter)) out.write(`${options.json ? raw : prettyLine(line, colours)}\n`);
  };
  const reader = new LineReader(file);
  const first = await reader.read();
  for (const raw of options.tail !== undefined ? first.slice(-options.tail) : first) show(raw);
  if (!options.follow) return;
  const interrupt = signal ? undefined : interruptSignal();
  const stop = signal ?? interrupt!.signal;
  try {
    while (!stop.aborted) {
      if (!(await pause(250, stop))) break;
      for (const raw of await reader.read()) show(raw);
    }
  } finally {
    interrupt?.dispose();
  }
}

/** A machine's name and id, so either finds lines that carry the other; just the word when the lab is down. */
async function machineAliases(dir: string, machine: string): Promise<string[]> {
  try {
    return await AdminClient.using(dir, async (c) => {
      const { machines } = await c.call(c.client.listMachines, {}, 2000);
      const m = machines.find((x) => x.name === machine || x.machineId === machine);
      return m ? [m.name, m.machineId] : [machine];
    });
  } catch {
    return [machine];
  }
}

/** Reads whole lines appended to a file since the last read; starts over when the file was truncated. */
class LineReader {
  private offset = 0;
  private partial = "";

  constructor(private readonly file: string) {}

  async read(): Promise<string[]> {
    const size = await stat(this.file).then(
      (s) => s.size,
      () => 0,
    );
    if (size < this.offset) {
      this.offset = 0;
      this.partial = "";
    }
    if (size === this.offset) return [];
    const handle = await open(this.file, "r");
    try {
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      const text = this.partial + buffer.subarray(0, bytesRead).toString("utf8");
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      return lines.filter((l) => l.length > 0);
    } finally {
      await handle.close();
    }
  }
}
