import { loadConfig } from "../common/config/index.js";
import { runDaemon } from "../common/shutdown/index.js";
import { ConfigServer } from "./config-server.js";
import { configServerOptions } from "./options.js";

/** `srlab config-server --config FILE`: runs the daemon until SIGTERM/SIGINT. */
export async function runConfigServer(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(configServerOptions, { file: configFile, flags, env: process.env });
  const server = new ConfigServer(options);
  await runDaemon({ "configuration server": server }, { logger: server.logger });
}
