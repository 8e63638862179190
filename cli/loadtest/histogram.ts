/**
 * A log-linear histogram (as HdrHistogram): each power of two is split into 64 buckets, so any
 * percentile is within 1/64 (1.6 %) of the true value, whatever the range. Percentiles are read
 * from the counts of every observation, never averaged from per-interval figures.
 */
const SUB_BUCKETS = 64;

export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  sum = 0;

  /** Records `n` observations of `value` (≥ 0; in the unit the caller chose, e.g. µs). */
  record(value: number, n = 1): void {
    if (!(value >= 0) || n <= 0) return;
    const b = bucketOf(value);
    this.counts.set(b, (this.counts.get(b) ?? 0) + n);
    this.count += n;
    this.sum += value * n;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  get mean(): number {
    return this.count ? this.sum / this.count : 0;
  }

  /** The value at percentile p (0–100): the upper edge of the bucket holding it, capped at max. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b)!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, upperEdge(b)));
    }
    return this.max;
  }

  /** Counts per bucket, merged into at most `buckets` ranges on a log scale (for charts). */
  distribution(buckets = 24): Array<{ upTo: number; count: number }> {
    if (this.count === 0) return [];
    const lo = Math.max(this.min, 1e-9);
    const hi = Math.max(this.max, lo * 1.0001);
    const step = (Math.log(hi) - Math.log(lo)) / buckets;
    const out = Array.from({ length: buckets }, (_, i) => ({ upTo: Math.exp(Math.log(lo) + step * (i + 1)), count: 0 }));
    for (const [b, c] of this.counts) {
      const v = Math.min(hi, Math.max(lo, upperEdge(b)));
      const i = Math.min(buckets - 1, Math.max(0, Math.floor((Math.log(v) - Math.log(lo)) / step - 1e-9)));
      out[i]!.count += c;
    }
    return out;
  }

  toJSON(): { count: number; min: number; max: number; mean: number; buckets: Array<[number, number]> } {
    return {
      count: this.count,
      min: this.count ? this.min : 0,
      max: this.count ? this.max : 0,
      mean: this.mean,
      buckets: [...this.counts.entries()].sort((a, b) => a[0] - b[0]).map(([b, c]) => [upperEdge(b), c]),
    };
  }
}

/** Bucket index: values below 1 share bucket 0..63 linearly; above, 64 buckets per octave. */
function bucketOf(v: number): number {
  if (v < 1) return Math.floor(v * SUB_BUCKETS);
  const octave = Math.floor(Math.log2(v));
  const base = 2 ** octave;
  return SUB_BUCKETS * (octave + 1) + Math.floor(((v - base) / base) * SUB_BUCKETS);
}

function upperEdge(b: number): number {
  if (b < SUB_BUCKETS) return (b + 1) / SUB_BUCKETS;
  const octave = Math.floor(b / SUB_BUCKETS) - 1;
  const sub = b % SUB_BUCKETS;
  const base = 2 ** octave;
  return base + ((sub + 1) / SUB_BUCKETS) * base;
}
