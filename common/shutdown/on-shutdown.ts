import type { Logger } from "../logger.js";

export interface ShutdownOptions {
  logger: Logger;
  /** How long this handler may take before shutdown gives up on it. */
  timeoutMs?: number;
}

interface Registration {
  handler: () => Promise<void>;
  logger: Logger;
  timeoutMs: number;
}

const SIGNALS = ["SIGTERM", "SIGINT"] as const;
const registrations: Registration[] = [];
let installed = false;
let shuttingDown = false;

/**
 * Registers work to do on SIGTERM/SIGINT. Handlers run one at a time, newest first (so what started
 * last stops first), each bounded by its timeout; the process then exits 0, or 1 if any handler
 * failed or timed out. A second signal during shutdown exits immediately. Returns an unregister
 * function for components stopped by other means.
 */
export function onShutdown(handler: () => Promise<void>, options: ShutdownOptions): () => void {
  const registration: Registration = { handler, logger: options.logger, timeoutMs: options.timeoutMs ?? 10_000 };
  registrations.push(registration);
  install();
  return () => {
    const index = registrations.indexOf(registration);
    if (index >= 0) registrations.splice(index, 1);
  };
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) process.on(signal, () => void onSignal(signal));
}

async function onSignal(signal: string): Promise<void> {
  const logger = registrations.at(-1)?.logger;
  if (shuttingDown) {
    logger?.warn("second signal during shutdown, exiting now", { signal });
    process.exit(1);
  }
  shuttingDown = true;
  logger?.info("shutting down", { signal, handlers: registrations.length });
  let failed = false;
  for (const registration of [...registrations].reverse()) {
    try {
      await withTimeout(registration.handler(), registration.timeoutMs);
    } catch (err) {
      failed = true;
      registration.logger.error("shutdown handler failed", { error: err instanceof Error ? err.message : String(err) });
    }
  }
  logger?.info("shutdown complete", { exitCode: failed ? 1 : 0 });
  process.exit(failed ? 1 : 0);
}

function withTimeout(work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
