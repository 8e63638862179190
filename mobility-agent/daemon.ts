import { loadConfig } from "../common/config/index.js";
import { runDaemon } from "../common/shutdown/index.js";
import { MobilityAgent } from "./mobility-agent.js";
import { mobilityAgentOptions } from "./options.js";

/** `srlab agent --config FILE`: runs the mobility agent until SIGTERM/SIGINT. */
export async function runMobilityAgent(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(mobilityAgentOptions, { file: configFile, flags: { ...flags, configFile }, env: process.env });
  const agent = new MobilityAgent(options);
  await runDaemon({ "mobility agent": agent }, { logger: agent.logger, stopTimeoutMs: 30_000 });
}
