/**
 * Reuses buffers of shared memory (SharedArrayBuffer) of varying sizes. A worker thread reads such
 * a buffer without a copy or a transfer, and once the worker has answered, the buffer goes back
 * here for the next task. Handing workers fresh buffers instead cost the sender one new buffer
 * per task: at hundreds of MB/s that garbage, not the copying, set off most full garbage
 * collections of the process (V8 collects when external memory grows by tens of MB).
 *
 * Sizes are rounded up to `roundBytes`; a free buffer is reused for a request of at least half its
 * size; at most `keepBytes` are held while unused (the largest first make room).
 */
export class SharedBufferPool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;
  private scratch = Buffer.alloc(0);

  constructor(
    private readonly roundBytes = 1024 * 1024,
    private readonly keepBytes = 64 * 1024 * 1024,
  ) {
    if (!Number.isSafeInteger(roundBytes) || roundBytes < 1) throw new RangeError(`roundBytes must be a positive integer, got ${roundBytes}`);
  }

  /** A buffer of `length` bytes of shared memory with arbitrary content; give it back when done. */
  take(length: number): Buffer {
    const size = Math.max(this.roundBytes, Math.ceil(length / this.roundBytes) * this.roundBytes);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const capacity = this.free[i]!.length;
      if (capacity >= size && capacity <= 2 * size && (best < 0 || capacity < this.free[best]!.length)) best = i;
    }
    if (best < 0) return Buffer.from(new SharedArrayBuffer(size)).subarray(0, length);
    const [whole] = this.free.splice(best, 1);
    this.freeBytes -= whole!.length;
    return whole!.subarray(0, length);
  }

  /**
   * A buffer from take() holding what `build` writes into the buffer it allocates. Many small
   * writes straight into shared memory cost about a microsecond each (V8 copies into shared memory
   * with care for concurrent readers), so `build` writes into a reused ordinary buffer and the
   * result moves over in one copy.
   */
  takeBuilt(build: (alloc: (length: number) => Buffer) => Buffer): Buffer {
    const built = build((length) => {
      if (length > this.keepBytes) return Buffer.allocUnsafe(length);
      if (this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(Math.ceil(length / this.roundBytes) * this.roundBytes);
      return this.scratch.subarray(0, length);
    });
    const out = this.take(built.length);
    out.set(built);
    return out;
  }

  /** Returns a buffer from take(); nothing may use it afterwards (neither here nor in a worker). */
  give(buffer: Buffer): void {
    const memory = buffer.buffer;
    if (!(memory instanceof SharedArrayBuffer) || buffer.byteOffset !== 0) return;
    // Given back twice would hand one buffer to two users.
    if (this.free.some((b) => b.buffer === memory)) return;
    if (memory.byteLength > this.keepBytes) return;
    this.free.push(Buffer.from(memory, 0, memory.byteLength));
    this.freeBytes += memory.byteLength;
    this.free.sort((a, b) => a.length - b.length);
    while (this.freeBytes > this.keepBytes) this.freeBytes -= this.free.pop()!.length;
  }

  /** Bytes held unused. */
  get idleBytes(): number {
    return this.freeBytes;
  }
}
