import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { PollTimeoutError, pollUntil } from "../../common/async/index.js";
import { DAEMON_NODE_FLAGS, withDaemonAllocatorEnv } from "../../common/bytes/index.js";
import { fileURLToPath } from "node:url";

const KEEPER = fileURLToPath(new URL("./keeper.js", import.meta.url));

/**
 * Starts `node ARGS…` under its own keeper (restart with backoff, state in `stateFile`); returns
 * the keeper's pid, which `stopProcess` stops cleanly together with the daemon.
 */
export function spawnSupervised(args: string[], logFile: string, stateFile: string, readyFile: string | undefined): number {
  rmSync(stateFile, { force: true });
  // SRLAB_DAEMON_NODE_ARGS (e.g. --cpu-prof) are for the daemon the keeper runs, not the keeper.
  const { SRLAB_DAEMON_NODE_ARGS: nodeArgs, ...env } = process.env;
  return spawnDaemon([KEEPER, stateFile, logFile, readyFile ?? "-", "--", ...daemonNodeArgs(nodeArgs), ...args], logFile, env);
}

/** The daemon flags (common/bytes/allocator-env.ts), then the user's: a flag given twice takes the last. */
function daemonNodeArgs(value: string | undefined): string[] {
  return [...DAEMON_NODE_FLAGS, ...(value ?? "").split(/\s+/).filter(Boolean)];
}

/**
 * Starts a daemon in its own process group with output appended to its log file. Node flags in
 * SRLAB_DAEMON_NODE_ARGS go to every daemon (e.g. `--cpu-prof --cpu-prof-dir=DIR` for profiling a
 * lab, which NODE_OPTIONS does not allow), after the daemon flags. It starts with the daemon
 * allocator settings (common/bytes/allocator-env.ts) unless the environment sets them.
 */
export function spawnDaemon(args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = openSync(logFile, "a");
  try {
    const nodeArgs = daemonNodeArgs(env.SRLAB_DAEMON_NODE_ARGS);
    // A lab started from a systemd service: its daemons are not that service's main process, so
    // they must not talk to its notify socket or feed its watchdog.
    const { NOTIFY_SOCKET: _n, WATCHDOG_USEC: _u, WATCHDOG_PID: _p, ...childEnv } = env;
    const child = spawn(process.execPath, [...nodeArgs, ...args], { detached: true, stdio: ["ignore", fd, fd], env: withDaemonAllocatorEnv(childEnv) });
    child.unref();
    if (!child.pid) throw new Error(`could not start ${args.join(" ")}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A killed daemon whose parent is gone can linger as a zombie until init reaps it.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs = 15_000): Promise<"stopped" | "killed" | "absent"> {
  if (!isAlive(pid)) return "absent";
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return "absent";
  }
  try {
    await pollUntil("the process to exit", () => !isAlive(pid), { timeoutMs: graceMs });
    return "stopped";
  } catch (err) {
    if (!(err instanceof PollTimeoutError)) throw err;
  }
  // The whole process group: a keeper and the daemon it supervises.
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await pollUntil("the killed process to exit", () => !isAlive(pid), { intervalMs: 50 });
  return "killed";
}

/** Waits for a daemon's ready file (written once it serves), failing early if it died. */
export async function waitReady<T>(readyFile: string, pid: number, timeoutMs: number, logFile: string): Promise<T> {
  const ready = (): T | undefined => {
    if (existsSync(readyFile)) {
      try {
        return JSON.parse(readFileSync(readyFile, "utf8")) as T;
      } catch {
        // partially written; try again
      }
    }
    if (!isAlive(pid)) throw new Error(`it exited during start; see ${logFile}\n${tail(logFile)}`);
    return undefined;
  };
  try {
    return await pollUntil("the ready file", ready, { timeoutMs });
  } catch (err) {
    if (err instanceof PollTimeoutError) throw new Error(`not ready after ${Math.round(timeoutMs / 1000)} s; see ${logFile}`);
    throw err;
  }
}

export function clearReady(readyFile: string): void {
  rmSync(readyFile, { force: true });
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-8).join("\n");
  } catch {
    return "";
  }
}
