// `node dist/bench/profile-summary.js [--by function|file|package] [--top N] [--from S] [--to S] FILE_OR_DIR…`: where a
// lab's CPU went, from the .cpuprofile files `SRLAB_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"`
// leaves (one per daemon process). Self time is summed per function (or file, or package) over all
// the given profiles and printed biggest first, with its share of the sampled time.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

/** The parts of V8's .cpuprofile JSON the summary reads. */
export interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type GroupBy = "function" | "file" | "package";

/** Short, stable name of a script URL: the part after node_modules or the project root. */
export function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const dist = url.lastIndexOf("/dist/");
  if (dist >= 0) return url.slice(dist + "/dist/".length);
  return url.replace(/^file:\/\//, "");
}

function packageOf(url: string): string {
  const s = shortUrl(url);
  if (s.startsWith("node:") || s === "(native)") return s.split("/")[0]!;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/");
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  // Project code: its top folder (process-server, common, …).
  return s.split("/")[0]!;
}

function keyOf(frame: CallFrame, by: GroupBy): string {
  // (garbage collector), (idle), (program): V8's own pseudo-frames keep their names.
  if (frame.functionName.startsWith("(") && frame.url === "") return frame.functionName;
  if (by === "package") return packageOf(frame.url);
  if (by === "file") return shortUrl(frame.url);
  return `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Seconds since each profile's start; a window leaves out start-up and shutdown. */
export interface Window {
  from: number;
  to: number;
}

/** Self time in microseconds per key, summed over the profiles (within the window, if given). */
export function selfTimes(profiles: CpuProfile[], by: GroupBy, window?: Window): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of profiles) {
    const keyById = new Map(p.nodes.map((n) => [n.id, keyOf(n.callFrame, by)]));
    let at = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const delta = p.timeDeltas[i] ?? 0;
      at += delta;
      if (window && (at < window.from * 1e6 || at >= window.to * 1e6)) continue;
      const key = keyById.get(p.samples[i]!) ?? "(unknown)";
      out.set(key, (out.get(key) ?? 0) + delta);
    }
  }
  return out;
}

/** Lines of the summary: total busy time (idle excluded), then the top entries with their share. */
export function formatSummary(times: Map<string, number>, top: number): string[] {
  const busy = [...times].filter(([k]) => k !== "(idle)");
  const total = busy.reduce((n, [, us]) => n + us, 0);
  const lines = [`busy ${(total / 1e6).toFixed(2)} s (idle ${((times.get("(idle)") ?? 0) / 1e6).toFixed(2)} s)`];
  for (const [key, us] of busy.sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`${((100 * us) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  }
  return lines;
}

function profileFiles(paths: string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith(".cpuprofile"))
          .map((f) => join(p, f))
      : [p],
  );
}

function main(argv: string[]): void {
  let by: GroupBy = "function";
  let top = 40;
  const paths: string[] = [];
  const window: Window = { from: 0, to: Number.POSITIVE_INFINITY };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--by") by = argv[++i] as GroupBy;
    else if (a === "--from") window.from = Number(argv[++i]);
    else if (a === "--to") window.to = Number(argv[++i]);
    else if (a === "--top") top = Number(argv[++i]);
    else paths.push(a);
  }
  if (paths.length === 0 || !["function", "file", "package"].includes(by) || !(top > 0) || !(window.from < window.to)) {
    process.stderr.write("usage: profile-summary [--by function|file|package] [--top N] [--from SECONDS] [--to SECONDS] FILE_OR_DIR...\n");
    process.exit(2);
  }
  const files = profileFiles(paths);
  const profiles = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as CpuProfile);
  console.log(`${files.length} profile(s), self time by ${by}`);
  for (const line of formatSummary(selfTimes(profiles, by, window), top)) console.log(line);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
