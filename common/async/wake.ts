/**
 * A wake-up for loops that wait for "something changed": `notify` resolves every pending `wait`,
 * and a notify with nobody waiting is remembered, so the next `wait` returns at once (no wake-up
 * is lost between a loop's check and its wait). Waiters re-check their condition after waking.
 */
export class Wake {
  private pending = false;
  private resolvers: (() => void)[] = [];

  notify(): void {
    this.pending = true;
    const r = this.resolvers;
    this.resolvers = [];
    for (const fn of r) fn();
  }

  /** Resolves on notify, after `timeoutMs` (if given), or on abort (never rejects). */
  wait(signal?: AbortSignal, timeoutMs?: number): Promise<void> {
    if (this.pending || signal?.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.resolvers = this.resolvers.filter((r) => r !== done);
        this.pending = false;
        resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener("abort", done, { once: true });
      this.resolvers.push(done);
    });
  }
}
