import { readKeeperState } from "./keeper-state.js";
import type { LabLayout, LabManifest, LabRole } from "./lab-layout.js";
import { isAlive } from "./processes.js";

/** One supervised daemon as `srlab status` shows it. */
export interface DaemonStatus {
  name: string;
  role: LabRole;
  /** The daemon's pid (0 while down); the keeper's is `supervisorPid`. */
  pid: number;
  supervisorPid: number;
  state: "running" | "restarting" | "stopping" | "stopped" | "failed" | "unsupervised";
  restarts: number;
  lastExit: string | null;
  lastExitAt: string | null;
}

/** Every daemon of the lab with its supervisor's view: pid, restarts and the last unexpected exit. */
export function daemonStatuses(layout: LabLayout, manifest: LabManifest): DaemonStatus[] {
  return manifest.components.map((c) => {
    const k = readKeeperState(layout.supervisorFile(c.name));
    const keeperAlive = isAlive(c.pid);
    const base = { name: c.name, role: c.role, supervisorPid: keeperAlive ? c.pid : 0, restarts: k?.restarts ?? 0, lastExit: k?.lastExit ?? null, lastExitAt: k?.lastExitAt ?? null };
    if (!k || k.keeperPid !== c.pid) {
      // Started by an older srlab without a keeper, or the keeper itself is gone.
      return { ...base, pid: keeperAlive ? c.pid : 0, state: keeperAlive ? "unsupervised" : "stopped" };
    }
    if (!keeperAlive) return { ...base, pid: 0, state: k.state === "failed" ? "failed" : "stopped" };
    const state = k.state === "backoff" || k.state === "starting" ? "restarting" : k.state === "running" ? "running" : k.state === "stopping" ? "stopping" : "stopped";
    return { ...base, pid: k.pid, state };
  });
}
