import { loadConfig } from "../common/config/index.js";
import { onShutdown } from "../common/shutdown/index.js";
import { MobilityAgent } from "./mobility-agent.js";
import { mobilityAgentOptions } from "./options.js";

/** `srlab agent --config FILE`: runs the mobility agent until SIGTERM/SIGINT. */
export async function runMobilityAgent(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(mobilityAgentOptions, { file: configFile, flags: { ...flags, configFile }, env: process.env });
  const agent = new MobilityAgent(options);
  onShutdown(() => agent.stop(), { logger: agent.logger, timeoutMs: 30_000 });
  await agent.start();
}
