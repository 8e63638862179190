// CPU time of a lab's daemons, read from /proc/PID/stat. On a shared machine wall-clock rates
// swing with whatever else runs; CPU seconds spent per replicated MB barely move, so every
// throughput row prints them per component.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { LabLayout } from "../cli/lab/index.js";
import type { LabRole } from "../cli/lab/lab-layout.js";

/** The groups a row reports: all agents together, all process servers together, … */
export type CpuGroup = "agent" | "process-server" | "azurite" | "config-server" | "master-target";

export type CpuSeconds = Record<CpuGroup, number>;

const GROUPS: CpuGroup[] = ["agent", "process-server", "azurite", "config-server", "master-target"];

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
    const n = Number.parseInt(out.stdout ?? "", 10);
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** User + system CPU seconds of one process so far; 0 when it is gone (or /proc is absent). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of proc(5) (utime, stime) are the 12th and 13th after the name.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return 0;
  }
}

function groupOf(role: LabRole): CpuGroup {
  return role;
}

/** A snapshot of every daemon's CPU seconds of a lab, summed per group. */
export function labCpu(dir: string): CpuSeconds {
  const out = Object.fromEntries(GROUPS.map((g) => [g, 0])) as CpuSeconds;
  for (const c of new LabLayout(dir).read().components) out[groupOf(c.role)] += processCpuSeconds(c.pid);
  return out;
}

export function cpuDelta(before: CpuSeconds, after: CpuSeconds): CpuSeconds {
  return Object.fromEntries(GROUPS.map((g) => [g, Math.max(0, after[g] - before[g])])) as CpuSeconds;
}

/** Milliseconds of CPU per MB (1e6 bytes) of each group, and of agent + process server together. */
export interface CpuPerMB {
  agent: number;
  processServer: number;
  azurite: number;
  /** Agent + process server: the figure issue targets are set on. */
  srlab: number;
}

export function cpuPerMB(cpu: CpuSeconds, bytes: number): CpuPerMB {
  const per = (s: number) => (bytes > 0 ? (s * 1000) / (bytes / 1e6) : Number.NaN);
  return {
    agent: per(cpu.agent),
    processServer: per(cpu["process-server"]),
    azurite: per(cpu.azurite),
    srlab: per(cpu.agent + cpu["process-server"]),
  };
}

/** "agent 3.1 + PS 6.2 = 9.3 ms/MB (Azurite 4.0)" */
export function formatCpuPerMB(c: CpuPerMB | undefined): string {
  if (!c) return "–";
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "–");
  return `${f(c.agent)} + ${f(c.processServer)} = ${f(c.srlab)} (Azurite ${f(c.azurite)})`;
}
