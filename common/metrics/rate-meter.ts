/**
 * Bytes per second over a sliding window of one-second buckets: the throughput figures in
 * heartbeats and `srlab status`. Feed it either increments (`record`) or a growing counter's
 * current total (`recordTotal`). Until a full window has passed, the rate is over the time since
 * the first figure, so a young stream is not under-reported.
 */
export class RateMeter {
  private readonly buckets: number[];
  private bucketSecond: number | undefined;
  private startedMs: number | undefined;
  private lastTotal: number | undefined;

  constructor(private readonly windowSeconds = 10) {
    if (!Number.isInteger(windowSeconds) || windowSeconds < 1) throw new RangeError(`rate window must be a whole number of seconds, got ${windowSeconds}`);
    this.buckets = new Array<number>(windowSeconds).fill(0);
  }

  /** Counts `bytes` moved now. */
  record(bytes: number, nowMs = Date.now()): void {
    this.roll(nowMs);
    this.startedMs ??= nowMs;
    this.buckets[this.bucketSecond! % this.windowSeconds]! += bytes;
  }

  /** Counts what a monotonically growing byte counter gained since its last total. */
  recordTotal(total: number, nowMs = Date.now()): void {
    const previous = this.lastTotal;
    this.lastTotal = total;
    if (previous === undefined) {
      this.roll(nowMs);
      this.startedMs ??= nowMs;
      return;
    }
    this.record(Math.max(0, total - previous), nowMs);
  }

  perSecond(nowMs = Date.now()): number {
    if (this.startedMs === undefined) return 0;
    this.roll(nowMs);
    const seconds = Math.min(this.windowSeconds, Math.max(1, (nowMs - this.startedMs) / 1000));
    return this.buckets.reduce((a, b) => a + b, 0) / seconds;
  }

  private roll(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (this.bucketSecond === undefined) this.bucketSecond = second;
    const steps = Math.min(second - this.bucketSecond, this.windowSeconds);
    for (let i = 1; i <= steps; i++) this.buckets[(this.bucketSecond + i) % this.windowSeconds] = 0;
    if (second > this.bucketSecond) this.bucketSecond = second;
  }
}
