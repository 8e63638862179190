import { loadConfig } from "../common/config/index.js";
import { createLogger } from "../common/logger.js";
import { segmentWorkersPart } from "../common/segment/index.js";
import { runDaemon } from "../common/shutdown/index.js";
import { processServerOptions } from "./options.js";
import { ProcessServer } from "./process-server.js";

/** `srlab process-server --config FILE`: runs the daemon until SIGTERM/SIGINT. */
export async function runProcessServer(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(processServerOptions, { file: configFile, flags: { ...flags, configFile }, env: process.env });
  const logger = createLogger(`process-server/${options.name}`, options.log);
  const server = new ProcessServer(options, logger);
  // Added first so it stops last: the server's uploads and applies settle before the workers end.
  await runDaemon({ "segment workers": segmentWorkersPart(options.segmentWorkers), "process server": server }, { logger, stopTimeoutMs: 15_000 });
  logger.info("process server running", { grpcAddress: server.grpcAddress, metricsUrl: server.metricsUrl, location: options.location });
}
