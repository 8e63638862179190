import { sleep } from "../async/index.js";
import type { Logger } from "../logger.js";
import { toSrlabError } from "./classify.js";

/** ASR's backoff in its time unit (minutes): 1, 2, 4, 8, 10, then every 30. */
const SCHEDULE_UNITS = [1, 2, 4, 8, 10] as const;
const STEADY_UNITS = 30;

/** ASR's unit is a minute; the lab shortens it (seconds, milliseconds) to rehearse in real time. */
export const DEFAULT_TIME_UNIT_MS = 60_000;

/**
 * Delay before retry number `attempt` (1 = first retry): 1, 2, 4, 8, 10 units, then 30 units for
 * every later attempt. Attempts below 1 are treated as the first.
 */
export function retrySchedule(attempt: number, timeUnitMs: number = DEFAULT_TIME_UNIT_MS): number {
  const index = Math.max(1, Math.floor(attempt)) - 1;
  const units = index < SCHEDULE_UNITS.length ? SCHEDULE_UNITS[index]! : STEADY_UNITS;
  return units * timeUnitMs;
}

export interface RetryOptions {
  /** Length of one schedule unit; defaults to a minute, as in ASR. */
  timeUnitMs?: number;
  /** Stops retrying: the pending wait ends and the promise rejects with the abort reason. */
  signal?: AbortSignal;
  /** Called before each wait; `attempt` is the retry about to happen (1 = first retry). */
  onRetry?: (attempt: number, delayMs: number, err: unknown) => void;
  logger?: Logger;
  /** Names the operation in log lines. */
  operation?: string;
  /**
   * Ends a backoff wait early when it resolves (e.g. a cheap probe saw the dependency return);
   * called once per wait.
   */
  wakeEarly?: () => Promise<void>;
}

/**
 * Runs `fn` until it succeeds. Recoverable failures are retried on the ASR schedule for as long as
 * it takes (until `signal` aborts); a non-recoverable failure is rethrown at once, unchanged.
 * `fn` receives the attempt number (0 = first try).
 */
export async function retryWithBackoff<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { timeUnitMs = DEFAULT_TIME_UNIT_MS, signal, onRetry, logger, operation = "operation", wakeEarly } = options;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      // An abort that surfaces from inside fn is the caller stopping us, not a failure to retry.
      signal?.throwIfAborted();
      const classified = toSrlabError(err);
      if (!classified.recoverable) {
        logger?.error(`${operation} failed, not retrying`, { code: classified.code, error: classified.message });
        throw err;
      }
      const retry = attempt + 1;
      const delayMs = retrySchedule(retry, timeUnitMs);
      logger?.warn(`${operation} failed, retrying`, {
        code: classified.code,
        error: classified.message,
        attempt: retry,
        delayMs,
      });
      onRetry?.(retry, delayMs, err);
      await waitOrWake(delayMs, signal, wakeEarly?.());
    }
  }
}

/** Sleeps `ms`, or less when `early` resolves first; rejects with the signal's reason on abort. */
async function waitOrWake(ms: number, signal: AbortSignal | undefined, early: Promise<void> | undefined): Promise<void> {
  if (!early) return sleep(ms, signal);
  const woken = new AbortController();
  void early.then(() => woken.abort());
  try {
    await sleep(ms, signal ? AbortSignal.any([signal, woken.signal]) : woken.signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (!woken.signal.aborted) throw err;
  }
}
