import { loadConfig } from "../common/config/index.js";
import { runDaemon } from "../common/shutdown/index.js";
import { MasterTarget } from "./master-target.js";
import { masterTargetOptions } from "./options.js";

/** `srlab master-target --config FILE`: runs the daemon until SIGTERM/SIGINT. */
export async function runMasterTarget(configFile: string | undefined, flags: Record<string, unknown> = {}): Promise<void> {
  const options = loadConfig(masterTargetOptions, { file: configFile, flags: { ...flags, configFile }, env: process.env });
  const target = new MasterTarget(options);
  await runDaemon({ "master target": target }, { logger: target.logger });
}
