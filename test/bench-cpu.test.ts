import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { waitUntil } from "./support/wait.js";
import { type CpuSnapshot, cpuDelta, cpuPerMB, formatCpuPerMB, labCpu, parseProcStat, type ProcStat, treeCpuSeconds } from "../bench/cpu.js";

const snapshot = (daemons: Array<[string, "agent" | "process-server", number, number, number]>): CpuSnapshot => ({
  daemons: daemons.map(([name, group, pid, startTicks, seconds]) => ({ name, group, pid, startTicks, seconds })),
});

describe("bench CPU readings", () => {
  test("parses /proc/PID/stat with spaces and parentheses in the command name", () => {
    const fields = ["S", "41", "0", "0", "0", "-1", "0", "0", "0", "0", "0", "120", "30", "7", "3", "20", "0", "11", "0", "98765"];
    const s = parseProcStat(`4242 (node (worker) x) ${fields.join(" ")} 0 0`);
    expect(s).toEqual({ pid: 4242, ppid: 41, ownTicks: 150, childTicks: 10, startTicks: 98765 });
    expect(parseProcStat("garbage")).toBeUndefined();
  });

  test("a daemon's reading covers its descendants, live and reaped, and nothing above it", () => {
    const t = new Map<number, ProcStat>([
      [10, { pid: 10, ppid: 1, ownTicks: 1000, childTicks: 0, startTicks: 1 }], // the keeper: not counted
      [11, { pid: 11, ppid: 10, ownTicks: 200, childTicks: 50, startTicks: 2 }], // the daemon
      [12, { pid: 12, ppid: 11, ownTicks: 30, childTicks: 0, startTicks: 3 }], // its child
      [13, { pid: 13, ppid: 12, ownTicks: 20, childTicks: 0, startTicks: 4 }], // a grandchild
      [14, { pid: 14, ppid: 10, ownTicks: 500, childTicks: 0, startTicks: 5 }], // a sibling
    ]);
    expect(treeCpuSeconds(11, t)! * 100).toBeCloseTo(300); // ticks at 100 Hz: 200 + 50 + 30 + 20
    expect(treeCpuSeconds(99, t)).toBeUndefined();
  });

  test("a missing, restarted or idle daemon makes the reading FAILED with the reason, never 0", () => {
    const ok = cpuDelta(snapshot([["agent-1", "agent", 5, 1, 1], ["ps", "process-server", 6, 1, 2]]), snapshot([["agent-1", "agent", 5, 1, 1.5], ["ps", "process-server", 6, 1, 3]]));
    expect(ok.failed).toBeUndefined();
    expect(formatCpuPerMB(cpuPerMB(ok, 10e6))).toBe("50.0 + 100.0 = 150.0 (Azurite 0.0, others 0.0)");

    const gone = cpuDelta(snapshot([["agent-1", "agent", 5, 1, 1], ["ps", "process-server", 0, 0, 0]]), snapshot([["agent-1", "agent", 5, 1, 2], ["ps", "process-server", 0, 0, 0]]));
    expect(gone.failed).toMatch(/ps was not running/);
    const restarted = cpuDelta(snapshot([["agent-1", "agent", 5, 1, 1], ["ps", "process-server", 6, 1, 2]]), snapshot([["agent-1", "agent", 5, 9, 2], ["ps", "process-server", 6, 1, 3]]));
    expect(restarted.failed).toMatch(/agent-1 restarted/);
    const idle = cpuDelta(snapshot([["agent-1", "agent", 5, 1, 1], ["ps", "process-server", 6, 1, 2]]), snapshot([["agent-1", "agent", 5, 1, 1], ["ps", "process-server", 6, 1, 3]]));
    expect(idle.failed).toMatch(/no CPU time read for any agent/);
    const printed = formatCpuPerMB(cpuPerMB(idle, 10e6));
    expect(printed).toMatch(/^FAILED \(/);
    expect(printed).not.toMatch(/0\.0/);
  });

  test("reads the supervised daemon named by its keeper's state file, not the keeper", async (ctx) => {
    if (process.platform !== "linux") ctx.skip("needs /proc");
    const dir = mkdtempSync(join(tmpdir(), "bench-cpu-"));
    // A busy child stands for the daemon; this test process stands for its keeper.
    // It spins until killed: on a busy machine it may get little CPU per second, so the test waits
    // for the reading to rise rather than for a fixed time.
    const child = spawn(process.execPath, ["-e", "for (;;);"], { stdio: "ignore" });
    try {
      mkdirSync(join(dir, "run"));
      const component = (name: string, role: string) => ({ name, role, logFile: "", readyFile: "", pid: process.pid });
      writeFileSync(join(dir, "lab.json"), JSON.stringify({ version: 1, components: [component("agent-1", "agent"), component("process-server", "process-server")] }));
      for (const name of ["agent-1", "process-server"]) {
        writeFileSync(join(dir, "run", `${name}.supervisor.json`), JSON.stringify({ keeperPid: process.pid, pid: child.pid, state: "running" }));
      }
      const before = labCpu(dir);
      expect(before.daemons.map((d) => d.pid)).toEqual([child.pid, child.pid]);
      // Until the child has run a little the reading says "no CPU time read"; it must then rise.
      const delta = await waitUntil("the busy daemon's CPU to show in the reading", () => {
        const d = cpuDelta(before, labCpu(dir));
        return d.failed === undefined && d.agent > 0.05 && d;
      }, 30_000);
      expect(delta.failed).toBeUndefined();
      expect(delta.agent).toBeGreaterThan(0.05);
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
