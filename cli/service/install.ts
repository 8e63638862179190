import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { removeFileDurablySync, writeFileAtomic } from "../../common/fs/index.js";
import { serviceRole } from "./roles.js";
import { renderUnit, stateDirectory, type UnitSpec, unitName } from "./unit-file.js";

export const SYSTEM_UNIT_DIR = "/etc/systemd/system";

export interface InstallOptions {
  unitDir?: string;
  /** Enable and start the unit (systemctl enable --now). */
  start?: boolean;
  say?: (line: string) => void;
  /** Runs systemctl; tests pass a recorder. */
  systemctl?: (args: string[]) => void;
}

/** Whether systemd manages this host (sd_booted(3)'s test). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

const defaultSystemctl = (args: string[]) => {
  execFileSync("systemctl", args, { stdio: ["ignore", "inherit", "inherit"] });
};

/** uid and gid of a local account, or one clear error when there is none. */
export function lookupUser(user: string): { uid: number; gid: number } {
  let entry: string;
  try {
    entry = execFileSync("getent", ["passwd", user], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(`no user "${user}" on this host: create it first (useradd --system ${user})`);
  }
  const [, , uid, gid] = entry.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Writes the unit (atomically), creates the directories it lets the daemon write to (owned by
 * the service's user when srlab creates them), reloads systemd and optionally starts the unit.
 */
export async function installService(spec: UnitSpec, options: InstallOptions = {}): Promise<string> {
  const unitDir = options.unitDir ?? SYSTEM_UNIT_DIR;
  const say = options.say ?? (() => undefined);
  const owner = spec.user ? lookupUser(spec.user) : undefined;
  if (!existsSync(unitDir)) throw new Error(`no unit directory ${unitDir}: is systemd installed on this host?`);
  const text = renderUnit(spec);
  for (const dir of spec.readWritePaths) {
    if (existsSync(dir)) continue;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    if (owner) chownSync(dir, owner.uid, owner.gid);
    say(`created ${dir}`);
  }
  const path = join(unitDir, unitName(spec.role));
  await writeFileAtomic(path, text, { mode: 0o644 });
  say(`wrote ${path}`);
  const systemctl = options.systemctl ?? (systemdRunning() && unitDir === SYSTEM_UNIT_DIR ? defaultSystemctl : undefined);
  if (systemctl) {
    systemctl(["daemon-reload"]);
    if (options.start) {
      systemctl(["enable", "--now", unitName(spec.role)]);
      say(`started ${unitName(spec.role)}: systemctl status ${unitName(spec.role)}`);
    } else {
      say(`start it with: systemctl enable --now ${unitName(spec.role)}`);
    }
  } else if (options.start) {
    throw new Error(`wrote ${path}, but systemd does not run on this host: nothing was started`);
  }
  return path;
}

/** Stops and disables the unit, removes its file and reloads systemd; the state directory stays. */
export function uninstallService(role: string, options: InstallOptions = {}): string {
  const name = unitName(serviceRole(role).role);
  const unitDir = options.unitDir ?? SYSTEM_UNIT_DIR;
  const say = options.say ?? (() => undefined);
  const path = join(unitDir, name);
  if (!existsSync(path)) throw new Error(`no ${name} in ${unitDir}: nothing to uninstall`);
  if (!readFileSync(path, "utf8").includes("srlab service install")) throw new Error(`${path} was not written by srlab service install: left alone`);
  const systemctl = options.systemctl ?? (systemdRunning() && unitDir === SYSTEM_UNIT_DIR ? defaultSystemctl : undefined);
  systemctl?.(["disable", "--now", name]);
  removeFileDurablySync(path);
  systemctl?.(["daemon-reload"]);
  say(`removed ${path}; the daemon's state in ${stateDirectory(serviceRole(role).role)} is kept`);
  return path;
}
