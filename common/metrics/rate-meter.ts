/** Bytes per second over a sliding window of one-second buckets (the heartbeat's throughput). */
export class RateMeter {
  private readonly buckets: number[];
  private bucketSecond = 0;

  constructor(private readonly windowSeconds = 10) {
    this.buckets = new Array<number>(windowSeconds).fill(0);
  }

  record(bytes: number, nowMs = Date.now()): void {
    this.roll(nowMs);
    this.buckets[this.bucketSecond % this.windowSeconds]! += bytes;
  }

  perSecond(nowMs = Date.now()): number {
    this.roll(nowMs);
    // The current second is still filling; average over the complete ones plus it.
    return this.buckets.reduce((a, b) => a + b, 0) / this.windowSeconds;
  }

  private roll(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (this.bucketSecond === 0) this.bucketSecond = second;
    const steps = Math.min(second - this.bucketSecond, this.windowSeconds);
    for (let i = 1; i <= steps; i++) this.buckets[(this.bucketSecond + i) % this.windowSeconds] = 0;
    if (second > this.bucketSecond) this.bucketSecond = second;
  }
}
