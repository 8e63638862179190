import { posix } from "node:path";
import { DAEMON_ALLOCATOR_ENV } from "../../common/bytes/index.js";

/** Everything one srlab unit file says; `renderUnit` turns it into systemd.unit(5) text. */
export interface UnitSpec {
  /** Role as the unit names it: config-server, process-server, mobility-agent, master-target. */
  role: string;
  description: string;
  /** Absolute node binary, srlab's entry script, then the daemon's arguments. */
  execStart: string[];
  /** Absolute path of the daemon's configuration file. */
  configFile: string;
  /** Account the daemon runs as; undefined runs it as root without any capability. */
  user?: string;
  /** Absolute paths outside the state and logs directories the daemon must write to. */
  readWritePaths: string[];
  /** "read-only" when the daemon reads or writes anything under /home, /root or /run/user. */
  protectHome: "yes" | "read-only";
  /** False when the daemon's files live under /tmp or /var/tmp, which a private /tmp would hide. */
  privateTmp: boolean;
  /** Set when the config has no log.file: the daemon then logs there (in LogsDirectory=) too. */
  logFile?: string;
  /** Binds a port below 1024 as a non-root user. */
  bindsPrivilegedPort: boolean;
  watchdogSeconds: number;
}

export const STATE_ROOT = "/var/lib/srlab";
export const LOGS_ROOT = "/var/log/srlab";

export function unitName(role: string): string {
  return `srlab-${role}.service`;
}

export function stateDirectory(role: string): string {
  return posix.join(STATE_ROOT, role);
}

/**
 * One word of a command line as systemd reads it: quoted when it holds spaces or quotes, with `%`
 * (specifiers) and `$` (variable expansion) doubled so the daemon gets the text as written.
 */
export function quoteWord(word: string): string {
  if (/[\n\r]/.test(word)) throw new Error(`a unit file cannot carry a line break in ${JSON.stringify(word)}`);
  const escaped = word.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (escaped !== "" && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A path in a path-list setting (ReadWritePaths=): spaces and specifiers escaped, never quoted. */
function pathWord(path: string): string {
  if (/[\n\r]/.test(path)) throw new Error(`a unit file cannot carry a line break in ${JSON.stringify(path)}`);
  return path.replace(/\\/g, "\\\\").replace(/%/g, "%%").replace(/ /g, "\\x20");
}

export function renderUnit(spec: UnitSpec): string {
  const lines: string[] = [];
  const add = (line = "") => lines.push(line);
  add(`# ${unitName(spec.role)}: written by "srlab service install ${spec.role}"; remove with "srlab service uninstall ${spec.role}".`);
  add("[Unit]");
  add(`Description=${spec.description}`);
  add("Documentation=man:systemd.service(5)");
  add("Wants=network-online.target");
  add("After=network-online.target");
  if (spec.role !== "config-server") {
    // Ordering only: when the configuration server runs on the same host it starts first.
    add("After=srlab-config-server.service");
  }
  add();
  add("[Service]");
  add("Type=notify");
  add("NotifyAccess=main");
  add(`ExecStart=${spec.execStart.map(quoteWord).join(" ")}`);
  add(`WorkingDirectory=${pathWord(stateDirectory(spec.role))}`);
  if (spec.user) add(`User=${spec.user}`);
  add("Restart=on-failure");
  add("RestartSec=5s");
  add("TimeoutStartSec=120s");
  // Process servers drain segments on SIGTERM; give them their 15 s and a margin.
  add("TimeoutStopSec=30s");
  add(`WatchdogSec=${spec.watchdogSeconds}s`);
  add(`StateDirectory=srlab/${spec.role}`);
  add("StateDirectoryMode=0750");
  add("LogsDirectory=srlab");
  add("LogsDirectoryMode=0750");
  if (spec.logFile) add(`Environment=${quoteWord(`SRLAB_LOG__FILE=${spec.logFile}`)}`);
  // Large buffers reused instead of mapped afresh each time (common/bytes/allocator-env.ts).
  for (const [name, value] of Object.entries(DAEMON_ALLOCATOR_ENV)) add(`Environment=${name}=${value}`);
  add("LimitNOFILE=65536");
  add("UMask=0027");
  add();
  add("# Hardening (systemd.exec(5)). Not MemoryDenyWriteExecute=: V8's JIT needs writable code pages.");
  add("NoNewPrivileges=yes");
  add("ProtectSystem=strict");
  for (const path of spec.readWritePaths) add(`ReadWritePaths=-${pathWord(path)}`);
  add(`ProtectHome=${spec.protectHome}`);
  if (spec.privateTmp) add("PrivateTmp=yes");
  else add("# PrivateTmp= is off: the configuration points into /tmp or /var/tmp.");
  add("PrivateDevices=yes");
  add("ProtectKernelTunables=yes");
  add("ProtectKernelModules=yes");
  add("ProtectKernelLogs=yes");
  add("ProtectControlGroups=yes");
  add("ProtectClock=yes");
  add("ProtectHostname=yes");
  add("ProtectProc=invisible");
  add("RestrictNamespaces=yes");
  add("RestrictRealtime=yes");
  add("RestrictSUIDSGID=yes");
  add("LockPersonality=yes");
  add("RemoveIPC=yes");
  // AF_NETLINK: Node lists the host's addresses (os.networkInterfaces) through it.
  add("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK");
  add("SystemCallArchitectures=native");
  add("SystemCallFilter=@system-service");
  // A refused call fails with EPERM instead of killing the daemon, so libuv falls back (io_uring).
  add("SystemCallErrorNumber=EPERM");
  // No capability at all, even as root, unless a port below 1024 is configured.
  add(`CapabilityBoundingSet=${spec.bindsPrivilegedPort ? "CAP_NET_BIND_SERVICE" : ""}`);
  if (spec.bindsPrivilegedPort && spec.user && spec.user !== "root") add("AmbientCapabilities=CAP_NET_BIND_SERVICE");
  add();
  add("[Install]");
  add("WantedBy=multi-user.target");
  return `${lines.join("\n")}\n`;
}
