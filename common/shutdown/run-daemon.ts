import type { Logger } from "../logger.js";
import { Lifecycle, type Startable } from "./lifecycle.js";
import { onShutdown } from "./on-shutdown.js";

export interface RunDaemonOptions {
  logger: Logger;
  /** How long stopping may take on SIGTERM/SIGINT before the process exits anyway. */
  stopTimeoutMs?: number;
}

/**
 * Every daemon's entry: starts its parts in order (a failed start stops what already started) and
 * stops them in reverse on SIGTERM/SIGINT, then exits.
 */
export async function runDaemon(parts: Record<string, Startable>, options: RunDaemonOptions): Promise<void> {
  const lifecycle = new Lifecycle(options.logger);
  for (const [name, part] of Object.entries(parts)) lifecycle.add(name, part);
  onShutdown(() => lifecycle.stop(), { logger: options.logger, timeoutMs: options.stopTimeoutMs });
  await lifecycle.start();
}
