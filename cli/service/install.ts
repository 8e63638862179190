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
  /** Whether systemd manages this host (default: {@link systemdRunning}); tests pass false. */
  systemd?: boolean;
}

/** Whether systemd manages this host (sd_booted(3)'s test). */
export function systemdRunning(): boolean {
  return existsSync("/run/systemd/system");
}

/**
 * Why nothing can be started here: systemd is not PID 1 (a container, WSL without systemd, a
 * chroot). The same sentence for every verb that would call systemctl.
 */
export function systemdNotRunningMessage(what: string): string {
  return `${what}: systemd does not run on this host (no /run/systemd/system; it is not PID 1 here, as in most containers), so nothing was written or started. Run the daemon with srlab join --detach or srlab ROLE --config FILE, or print the unit with srlab service install --print for a host that runs systemd`;
}

/** systemctl, with its complaint as one line of the error instead of a bare "Command failed". */
const defaultSystemctl = (args: string[]) => {
  try {
    execFileSync("systemctl", args, { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; status?: number };
    const why = e.code === "ENOENT" ? "systemctl is not installed" : (e.stderr ?? "").trim().split("\n").pop() || `exit ${e.status}`;
    throw new Error(`systemctl ${args.join(" ")} failed: ${why}`);
  }
};

/** The systemctl to run for units in unitDir: none when they are not systemd's or systemd does not run. */
function systemctlFor(unitDir: string, options: InstallOptions): ((args: string[]) => void) | undefined {
  if (options.systemctl) return options.systemctl;
  return unitDir === SYSTEM_UNIT_DIR && (options.systemd ?? systemdRunning()) ? defaultSystemctl : undefined;
}

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
  const systemctl = systemctlFor(unitDir, options);
  // Starting is checked before anything is written: one clear error, nothing half-way.
  if (options.start && !systemctl) {
    if (unitDir !== SYSTEM_UNIT_DIR) throw new Error(`--start needs the unit in ${SYSTEM_UNIT_DIR} (got --unit-dir ${unitDir}): nothing was written`);
    throw new Error(systemdNotRunningMessage(`cannot start ${unitName(spec.role)}`));
  }
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
  if (systemctl) {
    systemctl(["daemon-reload"]);
    if (options.start) {
      systemctl(["enable", "--now", unitName(spec.role)]);
      say(`started ${unitName(spec.role)}: systemctl status ${unitName(spec.role)}`);
    } else {
      say(`start it with: systemctl enable --now ${unitName(spec.role)}`);
    }
  } else {
    say(`systemd does not manage ${unitDir} here: the unit is written, not loaded (systemctl daemon-reload && systemctl enable --now ${unitName(spec.role)} where systemd runs)`);
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
  const systemctl = systemctlFor(unitDir, options);
  systemctl?.(["disable", "--now", name]);
  removeFileDurablySync(path);
  systemctl?.(["daemon-reload"]);
  say(`removed ${path}; the daemon's state in ${stateDirectory(serviceRole(role).role)} is kept`);
  return path;
}
