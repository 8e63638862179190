/**
 * Reuses large buffers instead of allocating fresh ones. A fresh multi-megabyte buffer is fresh
 * memory: the kernel zero-fills and maps every 4 KiB page on first touch, which on this lab's
 * virtual machines costs about a millisecond per MiB — more than copying the bytes into it.
 * A buffer given back is handed out again; at most `keep` are held while unused.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly bufferBytes: number,
    private readonly keep = 16,
  ) {}

  /** A buffer of `length` ≤ bufferBytes with arbitrary content; give it back when done. */
  take(length: number): Buffer {
    if (length > this.bufferBytes) return Buffer.allocUnsafeSlow(length);
    const whole = this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
    return whole.subarray(0, length);
  }

  /** Returns a buffer from take(); nothing may use it afterwards. */
  give(buffer: Buffer): void {
    if (buffer.byteOffset !== 0 || buffer.buffer.byteLength !== this.bufferBytes || this.free.length >= this.keep) return;
    // Given back twice would hand one buffer to two users.
    if (this.free.some((b) => b.buffer === buffer.buffer)) return;
    this.free.push(Buffer.from(buffer.buffer, 0, this.bufferBytes));
  }
}
