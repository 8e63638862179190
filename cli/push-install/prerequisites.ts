import { shellQuote } from "./ssh-session.js";

/** What the prerequisite check found out about the target. */
export interface TargetFacts {
  nodeVersion: string;
  npmVersion: string;
  uid: number;
  hostname: string;
  systemd: boolean;
  freeBytes: number;
}

/** A failed prerequisite: a code scripts can match, and what to do about it. */
export interface PrerequisiteFailure {
  code: "NODE_MISSING" | "NODE_TOO_OLD" | "NPM_MISSING" | "DISK_SPACE_LOW" | "STATE_DIR_NOT_WRITABLE" | "HOSTNAME_UNRESOLVED";
  message: string;
}

export const MIN_NODE_MAJOR = 20;

/**
 * A POSIX shell script that inspects the target and changes nothing but creating the state
 * directory (which the install needs anyway): one `key=value` line per fact.
 */
export function prerequisiteScript(stateDir: string): string {
  const dir = shellQuote(stateDir);
  return [
    `d=${dir}`,
    `printf 'node=%s\\n' "$(node --version 2>/dev/null)"`,
    `printf 'npm=%s\\n' "$(npm --version 2>/dev/null)"`,
    `printf 'uid=%s\\n' "$(id -u)"`,
    `h="$(hostname)"; printf 'hostname=%s\\n' "$h"`,
    `if getent hosts "$h" >/dev/null 2>&1; then echo resolves=yes; else echo resolves=no; fi`,
    `t="$d/.srlab-write-test.$$"; if mkdir -p "$d" 2>/dev/null && : > "$t" 2>/dev/null; then rm -f "$t"; echo writable=yes; else echo writable=no; fi`,
    `p="$d"; while [ ! -d "$p" ]; do p="$(dirname "$p")"; done`,
    `printf 'free_kb=%s\\n' "$(df -Pk "$p" 2>/dev/null | awk 'NR==2 {print $4}')"`,
    `if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi`,
  ].join("\n");
}

/** Reads the script's output and judges it: every failing prerequisite, each with its code. */
export function judgePrerequisites(output: string, stateDir: string, requiredBytes: number): { facts: TargetFacts; failures: PrerequisiteFailure[] } {
  const kv = new Map<string, string>();
  for (const line of output.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) kv.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const facts: TargetFacts = {
    nodeVersion: kv.get("node") ?? "",
    npmVersion: kv.get("npm") ?? "",
    uid: Number(kv.get("uid") ?? -1),
    hostname: kv.get("hostname") ?? "",
    systemd: kv.get("systemd") === "yes",
    freeBytes: Number(kv.get("free_kb") ?? 0) * 1024,
  };
  const failures: PrerequisiteFailure[] = [];
  const major = /^v(\d+)\./.exec(facts.nodeVersion)?.[1];
  if (!facts.nodeVersion) failures.push({ code: "NODE_MISSING", message: `Node.js ${MIN_NODE_MAJOR} or later is not installed (no node on the PATH)` });
  else if (!major || Number(major) < MIN_NODE_MAJOR) {
    failures.push({ code: "NODE_TOO_OLD", message: `Node.js ${facts.nodeVersion} is installed; srlab needs ${MIN_NODE_MAJOR} or later` });
  }
  if (!facts.npmVersion) failures.push({ code: "NPM_MISSING", message: "npm is not installed (it installs the srlab package)" });
  if (kv.get("writable") !== "yes") failures.push({ code: "STATE_DIR_NOT_WRITABLE", message: `${stateDir} cannot be created or written by the SSH user` });
  else if (!(facts.freeBytes >= requiredBytes)) {
    failures.push({
      code: "DISK_SPACE_LOW",
      message: `${Math.floor(facts.freeBytes / 2 ** 20)} MiB free at ${stateDir}; the install needs ${Math.ceil(requiredBytes / 2 ** 20)} MiB`,
    });
  }
  if (kv.get("resolves") !== "yes") {
    failures.push({ code: "HOSTNAME_UNRESOLVED", message: `the target's host name "${facts.hostname}" does not resolve there (add it to /etc/hosts or DNS)` });
  }
  return { facts, failures };
}
