/** Bytes per second over a sliding window, from a monotonically growing byte counter. */
export class RateMeter {
  private samples: Array<{ at: number; total: number }> = [];

  constructor(private readonly windowMs = 10_000) {}

  sample(total: number, now = Date.now()): void {
    this.samples.push({ at: now, total });
    while (this.samples.length > 2 && now - this.samples[0]!.at > this.windowMs) this.samples.shift();
  }

  rate(now = Date.now()): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last === first) return 0;
    const span = Math.max(now, last.at) - first.at;
    return span > 0 ? ((last.total - first.total) * 1000) / span : 0;
  }
}
