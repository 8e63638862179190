/**
 * A monotonically rising sequence position (uploaded, processed) that callers can wait on, so
 * DrainMachine and GetBlockChecksums wake the moment the position is reached instead of polling.
 */
export class Watermark {
  private current: number;
  private waiters: { target: number; resolve: () => void }[] = [];

  constructor(initial = 0) {
    this.current = initial;
  }

  get value(): number {
    return this.current;
  }

  advance(to: number): void {
    if (to <= this.current) return;
    this.current = to;
    const ready = this.waiters.filter((w) => w.target <= to);
    this.waiters = this.waiters.filter((w) => w.target > to);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the position is at least `target`; rejects with the signal's reason on abort. */
  waitFor(target: number, signal?: AbortSignal): Promise<void> {
    if (this.current >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const waiter = {
        target,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
}
