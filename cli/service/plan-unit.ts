import { isAbsolute, normalize, resolve, sep } from "node:path";
import { DAEMON_NODE_FLAGS } from "../../common/bytes/index.js";
import { loadConfig } from "../../common/config/index.js";
import { commonPorts, commonReadable, commonWritable, type DaemonPaths, serviceRole } from "./roles.js";
import { LOGS_ROOT, stateDirectory, type UnitSpec } from "./unit-file.js";

export interface PlanUnitInput {
  role: string;
  configFile: string;
  user?: string;
  /** Absolute node binary. */
  nodePath: string;
  /** Absolute path of srlab's built entry script (dist/cli/main.js). */
  entry: string;
  /** Further directories the daemon must write to (e.g. failback images outside the datastore). */
  extraReadWritePaths?: string[];
  watchdogSeconds?: number;
}

const HOME_ROOTS = ["/home", "/root", "/run/user"];
const TMP_ROOTS = ["/tmp", "/var/tmp"];

const under = (path: string, root: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * Reads and validates the daemon's configuration file, then works out what its unit must allow:
 * the directories it writes to, whether it needs /home or /tmp, privileged ports. A config the
 * daemon would refuse is refused here with the same message, before any unit is written.
 */
export async function planUnit(input: PlanUnitInput): Promise<UnitSpec> {
  const role = serviceRole(input.role);
  if (!isAbsolute(input.nodePath) || !isAbsolute(input.entry)) throw new Error("the node binary and srlab's entry script must be absolute paths");
  if (input.entry.endsWith(".ts")) throw new Error("srlab runs from its TypeScript sources here: build it (npm run build) and install the service from dist/cli/main.js");
  if (input.user !== undefined && !/^[a-z_][a-z0-9_.-]*\$?$/i.test(input.user)) throw new Error(`"${input.user}" is not a valid user name`);
  const configFile = resolve(input.configFile);
  const options = loadConfig(await role.schema(), { file: configFile }) as DaemonPaths;

  const state = stateDirectory(role.role);
  const absolute = (paths: string[]) => paths.filter((p) => isAbsolute(p)).map((p) => normalize(p));
  const extra = input.extraReadWritePaths ?? [];
  for (const p of extra) if (!isAbsolute(p)) throw new Error(`--read-write ${p}: give an absolute path`);
  // Relative paths in the config resolve against WorkingDirectory=, the state directory.
  const writable = [...new Set(absolute([...commonWritable(options), ...role.extraWritable(options as never), ...extra]))]
    .filter((p) => !under(p, state) && !under(p, LOGS_ROOT))
    .sort();
  const touched = [configFile, ...absolute(commonReadable(options)), ...writable];
  const ports = [...commonPorts(options), ...role.extraPorts(options as never)];
  return {
    role: role.role,
    description: role.description,
    execStart: [input.nodePath, ...DAEMON_NODE_FLAGS, input.entry, role.command, "--config", configFile],
    configFile,
    user: input.user === "root" ? undefined : input.user,
    readWritePaths: writable,
    protectHome: touched.some((p) => HOME_ROOTS.some((root) => under(p, root))) ? "read-only" : "yes",
    privateTmp: !touched.some((p) => TMP_ROOTS.some((root) => under(p, root))),
    logFile: options.log.file ? undefined : `${LOGS_ROOT}/${role.role}.log`,
    bindsPrivilegedPort: ports.some((p) => p > 0 && p < 1024),
    watchdogSeconds: input.watchdogSeconds ?? 30,
  };
}
