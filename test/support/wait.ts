import { vi } from "vitest";

type Probe<T> = T | undefined | false;

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that.
 * A probe that throws counts as "not yet" (a daemon still starting); on timeout the error names
 * what was awaited and the probe's last failure.
 */
export function waitUntil<T>(what: string, probe: () => Probe<T> | Promise<Probe<T>>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  return vi.waitFor(
    async () => {
      let value: Probe<T>;
      try {
        value = await probe();
      } catch (err) {
        throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`);
      }
      if (value === undefined || value === false) throw new Error(`timed out waiting for ${what}`);
      return value as T;
    },
    { timeout: timeoutMs, interval: everyMs },
  );
}
