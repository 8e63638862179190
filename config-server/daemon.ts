import { loadConfig } from "../common/config/index.js";
import { segmentWorkersPart } from "../common/segment/index.js";
import { runDaemon, type Startable } from "../common/shutdown/index.js";
import { ConfigServer } from "./config-server.js";
import { configServerOptions } from "./options.js";

/**
 * The daemon's parts in start order. Failovers replay log segments and verify reads them, on the
 * segment workers: they start first and stop last, once the server's replays have settled.
 */
export function configServerParts(server: Startable): Record<string, Startable> {
  return { "segment workers": segmentWorkersPart(), "configuration server": server };
}

/** `srlab config-server --config FILE`: runs the daemon until SIGTERM/SIGINT. */
export async function runConfigServer(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(configServerOptions, { file: configFile, flags, env: process.env });
  const server = new ConfigServer(options);
  await runDaemon(configServerParts(server), { logger: server.logger });
}
