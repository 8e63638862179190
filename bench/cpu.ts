// CPU time of a lab's daemons, read from /proc/PID/stat. On a shared machine wall-clock rates
// swing with whatever else runs; CPU seconds spent per replicated MB barely move, so every
// throughput row prints them per component.
//
// The lab manifest holds each daemon's keeper (supervisor) pid; the daemon itself is the keeper's
// child named in run/NAME.supervisor.json. A reading covers that daemon and every process below it
// (live ones from their own stat, reaped ones through cutime/cstime). A reading that cannot be
// trusted (a daemon not running, restarted during the interval, or no CPU at all where work was
// done) carries the reason and prints as FAILED, never as a silent 0.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { LabLayout, readKeeperState } from "../cli/lab/index.js";
import type { LabRole } from "../cli/lab/lab-layout.js";

/**
 * The groups a row reports: all agents together, the on-premises process servers (the data path)
 * together, … The Azure-side process server only works during failback: it is its own group.
 */
export type CpuGroup = "agent" | "process-server" | "azure-process-server" | "azurite" | "config-server" | "master-target";

/** CPU seconds per group over an interval; `failed` says why the figures cannot be trusted. */
export type CpuSeconds = Record<CpuGroup, number> & { failed?: string };

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    const n = Number.parseInt(out.stdout ?? "", 10);
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** The fields of /proc/PID/stat a reading needs. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks. */
  ownTicks: number;
  /** cutime + cstime: children that ended and were waited for, clock ticks. */
  childTicks: number;
  /** Start time since boot (ticks): tells a restarted daemon that reused its pid number. */
  startTicks: number;
}

/** Parses one /proc/PID/stat line; undefined when it is not one. */
export function parseProcStat(stat: string): ProcStat | undefined {
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  const pid = Number.parseInt(stat, 10);
  // Field 3 of proc(5) (state) is the first after the name; utime is field 14.
  const f = stat.slice(close + 2).split(" ");
  const n = (field: number) => Number(f[field - 3]);
  const out = { pid, ppid: n(4), ownTicks: n(14) + n(15), childTicks: n(16) + n(17), startTicks: n(22) };
  return Object.values(out).every(Number.isFinite) ? out : undefined;
}

/** Every process visible in /proc, by pid. */
function readProcTable(): Map<number, ProcStat> {
  const table = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseProcStat(readFileSync(`/proc/${name}/stat`, "utf8"));
      if (s) table.set(s.pid, s);
    } catch {
      // Gone between readdir and read.
    }
  }
  return table;
}

/** CPU seconds of a process and all its descendants (live ones, and reaped ones via cutime/cstime). */
export function treeCpuSeconds(root: number, table: Map<number, ProcStat>): number | undefined {
  if (!table.has(root)) return undefined;
  const children = new Map<number, number[]>();
  for (const s of table.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  let ticks = 0;
  const todo = [root];
  while (todo.length > 0) {
    const s = table.get(todo.pop()!)!;
    ticks += s.ownTicks + s.childTicks;
    todo.push(...(children.get(s.pid) ?? []));
  }
  return ticks / ticksPerSecond();
}

/** One daemon's reading. */
export interface DaemonCpu {
  name: string;
  group: CpuGroup;
  /** The daemon's own pid (not its keeper's); 0 when it was not running. */
  pid: number;
  startTicks: number;
  seconds: number;
}

/** Every daemon of a lab at one moment. */
export interface CpuSnapshot {
  daemons: DaemonCpu[];
}

const AZURE_PROCESS_SERVER = "process-server-azure";

function groupOf(name: string, role: LabRole): CpuGroup {
  return role === "process-server" && name === AZURE_PROCESS_SERVER ? "azure-process-server" : role;
}

/** Reads every daemon's CPU seconds so far (the daemon and its children, never the keeper). */
export function labCpu(dir: string): CpuSnapshot {
  const layout = new LabLayout(dir);
  const table = readProcTable();
  const daemons = layout.read().components.map((c): DaemonCpu => {
    const k = readKeeperState(layout.supervisorFile(c.name));
    // Supervised: the keeper's child is the daemon. Started without a keeper: the pid itself.
    const pid = k && k.keeperPid === c.pid ? k.pid : c.pid;
    const seconds = pid ? treeCpuSeconds(pid, table) : undefined;
    return { name: c.name, group: groupOf(c.name, c.role), pid: seconds === undefined ? 0 : pid, startTicks: table.get(pid)?.startTicks ?? 0, seconds: seconds ?? 0 };
  });
  return { daemons };
}

/** CPU seconds per group between two snapshots, with the reason when they cannot be compared. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSeconds {
  const out: CpuSeconds = { agent: 0, "process-server": 0, "azure-process-server": 0, azurite: 0, "config-server": 0, "master-target": 0 };
  const problems: string[] = [];
  const earlier = new Map(before.daemons.map((d) => [d.name, d]));
  for (const d of after.daemons) {
    const b = earlier.get(d.name);
    if (!b?.pid || !d.pid) {
      problems.push(`${d.name} was not running (no daemon pid ${b?.pid ? "after" : "before"})`);
      continue;
    }
    if (b.pid !== d.pid || b.startTicks !== d.startTicks) {
      problems.push(`${d.name} restarted during the measurement (pid ${b.pid} → ${d.pid})`);
      continue;
    }
    out[d.group] += Math.max(0, d.seconds - b.seconds);
  }
  // Agents and process servers always work while data flows: a zero is a broken reading.
  for (const g of ["agent", "process-server"] as const) {
    if (after.daemons.some((d) => d.group === g) && out[g] === 0) problems.push(`no CPU time read for any ${g}`);
  }
  if (problems.length > 0) out.failed = problems.join("; ");
  return out;
}

/** CPU seconds of one named daemon between two snapshots; undefined when it cannot be compared. */
export function daemonCpuDelta(before: CpuSnapshot, after: CpuSnapshot, name: string): number | undefined {
  const b = before.daemons.find((d) => d.name === name);
  const a = after.daemons.find((d) => d.name === name);
  if (!a || !b || !a.pid || a.pid !== b.pid || a.startTicks !== b.startTicks) return undefined;
  return a.seconds - b.seconds;
}

/** Milliseconds of CPU per MB (1e6 bytes) of each group, and of agent + process server together. */
export interface CpuPerMB {
  agent: number;
  processServer: number;
  azurite: number;
  /** Agent + process server: the figure issue targets are set on. */
  srlab: number;
  /** The daemons off the data path (configuration server, master target, Azure-side process server). */
  others: number;
  /** Why the reading is not to be trusted; the figures are NaN then. */
  failed?: string;
}

export function cpuPerMB(cpu: CpuSeconds, bytes: number): CpuPerMB {
  const failed = cpu.failed ?? (bytes > 0 ? undefined : "no bytes were written");
  const per = (s: number) => (failed ? Number.NaN : (s * 1000) / (bytes / 1e6));
  return {
    agent: per(cpu.agent),
    processServer: per(cpu["process-server"]),
    azurite: per(cpu.azurite),
    srlab: per(cpu.agent + cpu["process-server"]),
    others: per(cpu["config-server"] + cpu["master-target"] + cpu["azure-process-server"]),
    ...(failed ? { failed } : {}),
  };
}

/** "3.1 + 6.2 = 9.3 (Azurite 4.0, others 2.0)", or "FAILED (reason)". */
export function formatCpuPerMB(c: CpuPerMB | undefined): string {
  if (!c) return "–";
  if (c.failed) return `FAILED (${c.failed})`;
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "–");
  return `${f(c.agent)} + ${f(c.processServer)} = ${f(c.srlab)} (Azurite ${f(c.azurite)}, others ${f(c.others)})`;
}
