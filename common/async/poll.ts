import { sleep } from "./sleep.js";

export interface PollOptions {
  /** Gives up after this long with an error naming `what`. Default: wait forever. */
  timeoutMs?: number;
  /** Time between probes. Default 100 ms. */
  intervalMs?: number;
  /** Stops waiting (rejecting with the signal's reason). */
  signal?: AbortSignal;
}

/** Thrown when a poll runs out of time; the message says what was awaited. */
export class PollTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`);
    this.name = "PollTimeoutError";
  }
}

/**
 * Probes until it returns a value other than undefined or false, and returns that value. For
 * things srlab cannot be told about (another process starting, a port opening, a job finishing
 * on another server); inside one process, wait on a Wake or Watermark instead.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: PollOptions = {},
): Promise<T> {
  const { timeoutMs, intervalMs = 100, signal } = options;
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    const left = deadline - performance.now();
    if (left <= 0) throw new PollTimeoutError(what, timeoutMs!);
    await sleep(Math.min(intervalMs, left), signal);
  }
}
