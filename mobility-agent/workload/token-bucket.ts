/**
 * Token bucket: `rate` tokens per second, holding at most `burst`. Debits may drive it negative;
 * the caller waits out the debt, so over any window the throughput is ≤ burst + rate·t.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0)) throw new RangeError("token bucket rate must be > 0");
    this.tokens = burst;
    this.last = now;
  }

  /** Take n tokens at time `now` (ms); returns how many ms to wait before acting on them. */
  reserve(n: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }
}
