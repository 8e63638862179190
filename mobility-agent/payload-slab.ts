/** Payloads above this share of a slab get a buffer of their own. */
const OWN_BUFFER_SHARE = 8;

/**
 * Copies captured payloads into shared slabs instead of one fresh buffer each: a 4 KiB write then
 * costs a memcpy, not an allocation the garbage collector must later trace and free. Records leave
 * the queue in sequence order, which is slab order, so a slab is held by at most one stretch of
 * unacknowledged records and the memory budget's count of payload bytes stays within one slab.
 */
export class PayloadSlab {
  private slab = Buffer.alloc(0);
  private used = 0;

  constructor(private readonly slabBytes = 1024 * 1024) {}

  copy(data: Buffer): Buffer {
    const n = data.length;
    if (n * OWN_BUFFER_SHARE > this.slabBytes) return Buffer.from(data);
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    data.copy(out);
    // 8-byte alignment keeps every payload's start aligned for whoever reads it next.
    this.used += (n + 7) & ~7;
    return out;
  }
}
