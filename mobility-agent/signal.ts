/** A level-less wake-up: every wait() pending at notify() resolves. */
export class Signal {
  private waiters: Array<() => void> = [];

  wait(abort?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (abort?.aborted) return resolve();
      const done = () => {
        abort?.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.push(done);
      abort?.addEventListener("abort", done, { once: true });
    });
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
