/**
 * A FIFO counting semaphore: at most `permits` holders at once, waiters served in arrival order
 * (so one busy holder cannot starve the others). Used to bound segments in flight per process.
 */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`a semaphore needs at least one permit, got ${permits}`);
    this.free = permits;
  }

  /** Permits not held right now. */
  get available(): number {
    return this.free;
  }

  /** Resolves true with a permit, or false on abort (without one). */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      };
      this.waiting.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Returns a permit; the longest waiter gets it directly. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else if (this.free < this.permits) this.free++;
    else throw new Error("semaphore released more often than acquired");
  }
}
