import { existsSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { diskSize } from "../arguments.js";
import { labDir } from "../lab/index.js";
import { parseCaHash, parseHostPort } from "./ca-discovery.js";

export const JOIN_ROLES = ["agent", "process-server", "master-target"] as const;
export type JoinRole = (typeof JOIN_ROLES)[number];

export interface JoinFlags {
  configServer?: string;
  token?: string;
  caHash?: string;
  name?: string;
  listen?: string;
  dir?: string;
  disk?: string[];
  detach?: boolean;
  service?: boolean;
}

/** Where a joined component keeps its files on this host. */
export interface JoinPaths {
  /** Holds lab.json, so `srlab down --dir` stops a detached daemon. */
  dir: string;
  configFile: string;
  pkiDir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  dataDir: string;
  logFile: string;
  readyFile: string;
  supervisorFile: string;
}

export interface JoinDisk {
  path: string;
  sizeBytes: number;
}

/** Everything `srlab join` will do, decided from its flags before anything is sent or written. */
export interface JoinPlan {
  role: JoinRole;
  name: string;
  configServer: { host: string; port: number; address: string };
  token: string;
  caHash: string;
  /** Host the daemon binds and is reached at; port 0 = pick a free one now and keep it. */
  listen: { host: string; port: number };
  disks: JoinDisk[];
  start: "foreground" | "detach" | "service";
  paths: JoinPaths;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TOKEN = /^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{20,}$/;
const DEFAULT_DISK_BYTES = 1024 ** 3;

/** Checks every flag of `srlab join`: one line naming the flag for the first that is wrong. */
export function planJoin(role: string, flags: JoinFlags, env: { uid: number; hostName: string } = { uid: process.getuid?.() ?? -1, hostName: hostname() }): JoinPlan {
  if (!(JOIN_ROLES as readonly string[]).includes(role)) throw new Error(`ROLE must be one of ${JOIN_ROLES.join(", ")}, got "${role}"`);
  const r = role as JoinRole;
  if (!flags.configServer) throw new Error("--config-server HOST:PORT is required (srlab token create prints the whole command)");
  if (!flags.token) throw new Error("--token is required (srlab token create on the head node makes one)");
  if (!flags.caHash) throw new Error("--ca-hash is required: it is how this host knows it talks to your configuration server");
  const cs = parseHostPort("--config-server", flags.configServer);
  const caHash = parseCaHash(flags.caHash);
  const token = flags.token.trim();
  if (!TOKEN.test(token)) throw new Error(`--token must be a join token as srlab token create prints it (ID.SECRET), got "${flags.token}"`);
  const shortHost = env.hostName.split(".")[0] || "host";
  const name = flags.name ?? (r === "agent" ? shortHost : `${r}-${shortHost}`);
  if (!NAME.test(name)) throw new Error(`--name must be letters, digits, ".", "_" or "-" (at most 63), got "${name}"`);
  const listen = parseListen(flags.listen);
  if (flags.detach && flags.service) throw new Error("--detach and --service exclude each other: pick one");
  if (r !== "agent" && flags.disk?.length) throw new Error(`--disk is for agents; a ${r} has no disks`);
  const paths = joinPaths(flags.dir, name, env.uid === 0);
  const disks = r === "agent" ? planDisks(flags.disk ?? [], paths.dataDir) : [];
  return {
    role: r,
    name,
    configServer: { ...cs, address: `${cs.host.includes(":") ? `[${cs.host}]` : cs.host}:${cs.port}` },
    token,
    caHash,
    listen,
    disks,
    start: flags.service ? "service" : flags.detach ? "detach" : "foreground",
    paths,
  };
}

/**
 * `--listen HOST[:PORT]`; without it, the host's first non-loopback IPv4 address (what other
 * hosts can reach), else loopback. A wildcard cannot be put in a certificate or dialled.
 */
export function parseListen(value: string | undefined): { host: string; port: number } {
  if (value === undefined) return { host: primaryAddress(), port: 0 };
  const v = value.trim();
  const withPort = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(v);
  const host = (withPort ? withPort[1]! : v).replace(/^\[|\]$/g, "");
  const port = withPort ? Number(withPort[2]) : 0;
  // HOST:0 is HOST with a free port picked now (and kept in the config), as without a port.
  if (!host || /\s/.test(host) || port > 65535) throw new Error(`--listen must be HOST or HOST:PORT, got "${value}"`);
  if (host === "0.0.0.0" || host === "::") {
    throw new Error(`--listen ${value}: give the address other hosts reach this one at (a wildcard cannot go into the certificate)`);
  }
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) throw new Error(`--listen must be an IP address or a host name, got "${value}"`);
  return { host, port };
}

function primaryAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/** `PATH[:SIZE]`: an existing image keeps its size; a missing one needs SIZE and is created sparse. */
function planDisks(specs: string[], dataDir: string): JoinDisk[] {
  if (specs.length === 0) return [{ path: join(dataDir, "disk-0.img"), sizeBytes: DEFAULT_DISK_BYTES }];
  const disks = specs.map((spec) => {
    const m = /^(.+?)(?::([0-9.]+\s*[A-Za-z]*))?$/.exec(spec);
    const path = resolve(m?.[1] ?? "");
    if (!m?.[1]) throw new Error(`--disk must be PATH[:SIZE], got "${spec}"`);
    if (m[2] !== undefined) return { path, sizeBytes: diskSize(`--disk ${spec}`, m[2]) };
    if (!existsSync(path)) throw new Error(`--disk ${spec}: ${path} does not exist; give its size to create it (PATH:SIZE, e.g. ${m[1]}:1GiB)`);
    const st = statSync(path);
    if (!st.isFile()) throw new Error(`--disk ${spec}: ${path} is not an image file`);
    return { path, sizeBytes: st.size };
  });
  const seen = new Set<string>();
  for (const d of disks) {
    if (seen.has(d.path)) throw new Error(`--disk ${d.path} is given twice`);
    seen.add(d.path);
  }
  return disks;
}

/**
 * With --dir, everything under it (like a lab); as root without --dir, the config and the keys
 * under /etc/srlab and the state under /var/lib/srlab; otherwise $SRLAB_DIR or ./.srlab.
 */
export function joinPaths(dirFlag: string | undefined, name: string, root: boolean): JoinPaths {
  const system = root && dirFlag === undefined;
  const dir = resolve(system ? "/var/lib/srlab" : labDir(dirFlag));
  const etc = system ? "/etc/srlab" : dir;
  const configFile = system ? join(etc, `${name}.yaml`) : join(dir, "config", `${name}.yaml`);
  const pkiDir = join(etc, "pki");
  if (!isAbsolute(dir)) throw new Error(`cannot resolve ${dir}`);
  return {
    dir,
    configFile,
    pkiDir,
    caFile: join(pkiDir, "ca.pem"),
    certFile: join(pkiDir, `${name}.pem`),
    keyFile: join(pkiDir, `${name}-key.pem`),
    dataDir: join(dir, "data", name),
    logFile: join(dir, "logs", `${name}.log`),
    readyFile: join(dir, "run", `${name}.ready.json`),
    supervisorFile: join(dir, "run", `${name}.supervisor.json`),
  };
}
