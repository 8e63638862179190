/**
 * Waits `ms`; with a signal, rejects with the signal's reason as soon as it aborts (so a loop
 * stopped mid-wait ends with the reason its owner gave, like `signal.throwIfAborted()`).
 * Built on the global `setTimeout` rather than `node:timers/promises`, so a test's fake timers
 * drive every wait that goes through here.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
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
