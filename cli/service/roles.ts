import { dirname } from "node:path";
import type { z } from "zod";

/** What every daemon's options share, as far as a unit file cares. */
interface DaemonPaths {
  dataDir: string;
  log: { file?: string };
  readyFile?: string;
  tls?: { caFile: string; certFile: string; keyFile: string };
  listen: { port: number };
  metrics: { port: number };
}

export interface ServiceRole {
  /** Name of the unit and of the role in `srlab service install ROLE`. */
  role: "config-server" | "process-server" | "mobility-agent" | "master-target";
  /** The srlab verb that runs the daemon in the foreground. */
  command: string;
  description: string;
  /** The daemon's option schema (loaded lazily: it pulls in the component). */
  schema(): Promise<z.ZodType>;
  /** Directories the daemon writes to besides dataDir and its log and ready files. */
  extraWritable(options: never): string[];
  /** Ports besides listen and metrics. */
  extraPorts(options: never): number[];
}

const roles: ServiceRole[] = [
  {
    role: "config-server",
    command: "config-server",
    description: "srlab configuration server",
    schema: async () => (await import("../../config-server/index.js")).configServerOptions,
    extraWritable: (o: { storage: { kind: string; directory?: string } }) => (o.storage.kind === "directory" && o.storage.directory ? [o.storage.directory] : []),
    extraPorts: () => [],
  },
  {
    role: "process-server",
    command: "process-server",
    description: "srlab process server",
    schema: async () => (await import("../../process-server/index.js")).processServerOptions,
    extraWritable: (o: { cache: { dir?: string } }) => (o.cache.dir ? [o.cache.dir] : []),
    extraPorts: () => [],
  },
  {
    role: "mobility-agent",
    command: "agent",
    description: "srlab mobility agent",
    schema: async () => (await import("../../mobility-agent/index.js")).mobilityAgentOptions,
    // Disk images may be created (sparse) next to where they are configured.
    extraWritable: (o: { disks: { path: string }[]; nbd: { socketPath?: string } }) => [
      ...o.disks.map((d) => dirname(d.path)),
      ...(o.nbd.socketPath ? [dirname(o.nbd.socketPath)] : []),
    ],
    extraPorts: (o: { nbd: { port: number } }) => [o.nbd.port],
  },
  {
    role: "master-target",
    command: "master-target",
    description: "srlab master target",
    schema: async () => (await import("../../master-target/index.js")).masterTargetOptions,
    extraWritable: (o: { datastore?: string }) => (o.datastore ? [o.datastore] : []),
    extraPorts: () => [],
  },
] as ServiceRole[];

export const SERVICE_ROLES = roles.map((r) => r.role);

/** The role by its unit name, or by the daemon's verb ("agent"); one clear error otherwise. */
export function serviceRole(name: string): ServiceRole {
  const found = roles.find((r) => r.role === name || r.command === name);
  if (!found) throw new Error(`unknown role "${name}": expected one of ${SERVICE_ROLES.join(", ")}`);
  return found;
}

export function commonWritable(o: DaemonPaths): string[] {
  return [o.dataDir, ...(o.log.file ? [dirname(o.log.file)] : []), ...(o.readyFile ? [dirname(o.readyFile)] : [])];
}

export function commonReadable(o: DaemonPaths): string[] {
  return o.tls ? [o.tls.caFile, o.tls.certFile, o.tls.keyFile] : [];
}

export function commonPorts(o: DaemonPaths): number[] {
  return [o.listen.port, o.metrics.port];
}

export type { DaemonPaths };
