/**
 * The newest `capacity` items in arrival order, in a fixed array: an hour of one-second samples
 * costs the same memory on the first day as on the hundredth.
 */
export class SampleWindow<T> {
  private readonly items: Array<T | undefined>;
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`window capacity must be a positive integer, got ${capacity}`);
    this.items = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.capacity, this.count + 1);
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.items[(start + i) % this.capacity]!);
    return out;
  }

  /** Items after the first one (oldest first) for which `isNewer` holds, oldest first. */
  newerThan(isNewer: (item: T) => boolean): T[] {
    const all = this.toArray();
    let lo = 0;
    let hi = all.length;
    // Items arrive in time order, so the newer ones are a suffix: binary search for its start.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (isNewer(all[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return all.slice(lo);
  }

  latest(): T | undefined {
    return this.count === 0 ? undefined : this.items[(this.next - 1 + this.capacity) % this.capacity];
  }
}
