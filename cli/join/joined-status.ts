import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { checkHealth, LabLayout } from "../lab/index.js";
import type { JoinRole } from "./join-plan.js";

/** A daemon `srlab join` set up in a directory: what `srlab status --dir` shows on a joined host. */
export interface JoinedComponent {
  name: string;
  role: JoinRole;
  configFile: string;
  /** host:port it serves gRPC on. */
  address: string;
  metricsAddress: string;
  /** The head node's configuration server it reports to. */
  configServer: string;
  /** grpc.health.v1 answer of the daemon, or why it gave none. */
  health: string;
}

interface JoinedConfig {
  name?: string;
  listen?: { host?: string; port?: number };
  metrics?: { host?: string; port?: number };
  tls?: { caFile?: string };
  configServer?: { address?: string; credential?: string };
  disks?: unknown[];
  location?: string;
}

const SYSTEM_CONFIG_DIR = "/etc/srlab";
const SYSTEM_STATE_DIR = "/var/lib/srlab";

/**
 * The daemons joined into dir: config files that carry a component credential (a head's lab
 * keeps its admin credential instead). A service join as root keeps its configs in /etc/srlab.
 */
export function joinedConfigs(dir: string): Array<{ file: string; config: JoinedConfig }> {
  const abs = resolve(dir);
  const dirs = [join(abs, "config"), ...(abs === SYSTEM_STATE_DIR ? [SYSTEM_CONFIG_DIR] : [])];
  const found: Array<{ file: string; config: JoinedConfig }> = [];
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).filter((n) => n.endsWith(".yaml")).sort()) {
      const file = join(d, f);
      try {
        const config = parse(readFileSync(file, "utf8")) as JoinedConfig;
        if (config?.configServer?.credential && config.configServer.address) found.push({ file, config });
      } catch {
        // unreadable or not srlab's: not a joined daemon
      }
    }
  }
  return found;
}

/** True when dir is a joined host's directory rather than a head node's lab. */
export function isJoinedDirectory(dir: string): boolean {
  return !existsSync(new LabLayout(dir).adminCredentialFile) && joinedConfigs(dir).length > 0;
}

const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);

/** Each joined daemon of dir with its addresses and whether it answers its health check now. */
export async function joinedComponents(dir: string): Promise<JoinedComponent[]> {
  const layout = new LabLayout(dir);
  const roles = new Map((layout.exists() ? layout.read().components : []).map((c) => [c.name, c.role]));
  return Promise.all(
    joinedConfigs(dir).map(async ({ file, config }) => {
      const name = config.name ?? file.replace(/^.*\/|\.yaml$/g, "");
      // lab.json names the role of a detached daemon; a service's config shows it by its keys.
      const recorded = roles.get(name);
      const role: JoinRole =
        recorded === "agent" || recorded === "process-server" || recorded === "master-target"
          ? recorded
          : config.disks
            ? "agent"
            : config.location
              ? "process-server"
              : "master-target";
      const address = `${bracket(config.listen?.host ?? "")}:${config.listen?.port ?? 0}`;
      const health = await checkHealth(address, config.tls?.caFile, "", 2_000).catch((err: Error & { details?: string }) => `not answering (${err.details ?? err.message})`);
      return {
        name,
        role,
        configFile: file,
        address,
        metricsAddress: `${bracket(config.metrics?.host ?? "")}:${config.metrics?.port ?? 0}`,
        configServer: config.configServer?.address ?? "",
        health,
      };
    }),
  );
}

/** Plain lines for `srlab status` on a joined host: what runs here, and where the lab's status is. */
export function joinedStatusLines(dir: string, components: JoinedComponent[]): string[] {
  const heads = [...new Set(components.map((c) => c.configServer))];
  return [
    `${resolve(dir)} is a joined host's directory, not a head node's lab: it holds ${components.length === 1 ? "this daemon" : "these daemons"}`,
    ...components.map((c) => `  ${c.role} ${c.name}: serving ${c.address} (health: ${c.health}), /metrics ${c.metricsAddress}, config ${c.configFile}`),
    `Configuration server: ${heads.join(", ")}.`,
    "The lab's status (every machine, RPO, health) needs the admin credential, which only the head node has: run srlab status there (with its --dir).",
  ];
}
