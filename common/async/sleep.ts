import { setTimeout as delay } from "node:timers/promises";

/**
 * Waits `ms`; with a signal, rejects with the signal's reason as soon as it aborts (so a loop
 * stopped mid-wait ends with the reason its owner gave, like `signal.throwIfAborted()`).
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

/** Like sleep, but resolves false on abort instead of rejecting (for loops that just stop). */
export async function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  if (ms <= 0) return true;
  try {
    await sleep(ms, signal);
    return true;
  } catch (err) {
    if (signal?.aborted) return false;
    throw err;
  }
}
