import { closePageHashWorkers } from "../common/blockhash/index.js";
import { loadConfig } from "../common/config/index.js";
import { runDaemon } from "../common/shutdown/index.js";
import { MobilityAgent } from "./mobility-agent.js";
import { mobilityAgentOptions } from "./options.js";

/** `srlab agent --config FILE`: runs the mobility agent until SIGTERM/SIGINT. */
export async function runMobilityAgent(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(mobilityAgentOptions, { file: configFile, flags: { ...flags, configFile }, env: process.env });
  const agent = new MobilityAgent(options);
  // The page-hash workers (the disk fingerprints' build) stop after the agent that uses them.
  const pageHashWorkers = { start: async () => {}, stop: closePageHashWorkers };
  await runDaemon({ "page-hash workers": pageHashWorkers, "mobility agent": agent }, { logger: agent.logger, stopTimeoutMs: 30_000 });
}
