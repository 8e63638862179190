/** Restart delays of a supervised daemon, in seconds; the last one repeats. */
export const RESTART_DELAYS_S = [1, 2, 4, 8, 16, 30] as const;
/** A run that lasted this long was healthy: the next crash starts the delays over. */
export const STABLE_RUN_MS = 60_000;

/**
 * The keeper's restart backoff: each crash in a row waits longer (1, 2, 4, 8, 16, then every 30 s),
 * so a daemon that cannot start does not spin, and one that ran for a minute restarts at once.
 */
export class RestartBackoff {
  private failures = 0;

  /** The wait in ms before restarting a daemon whose run began at `startedAt` and ended at `now`. */
  next(startedAt: number, now: number = Date.now()): number {
    this.failures = now - startedAt >= STABLE_RUN_MS ? 1 : this.failures + 1;
    return RESTART_DELAYS_S[Math.min(this.failures, RESTART_DELAYS_S.length) - 1]! * 1000;
  }
}
