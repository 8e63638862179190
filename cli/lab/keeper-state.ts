import { readFileSync } from "node:fs";

/** What a daemon's keeper (cli/lab/keeper.ts) writes to `run/NAME.supervisor.json`. */
export interface KeeperState {
  keeperPid: number;
  /** The daemon's own pid; 0 while it is down. */
  pid: number;
  state: "starting" | "running" | "backoff" | "stopping" | "stopped" | "failed";
  /** Restarts after unexpected exits since `srlab up` started the keeper. */
  restarts: number;
  /** e.g. "killed by SIGKILL", "exited with code 1"; null before the first unexpected exit. */
  lastExit: string | null;
  lastExitAt: string | null;
  startedAt: string | null;
}

export function readKeeperState(file: string): KeeperState | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as KeeperState;
  } catch {
    return undefined;
  }
}
