import type { Socket } from "node:net";

/** Thrown by a pending or later read once the stream has ended or failed. */
export class StreamClosedError extends Error {
  constructor(message = "connection closed", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StreamClosedError";
  }
}

interface Waiter {
  need: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Exact-length reads over a socket's chunk stream. Reads that fall inside one received chunk
 * return a view of it (no copy); only reads spanning chunks are joined, once. The socket is
 * paused while more than `highWaterMark` bytes sit unread so a fast sender cannot balloon memory.
 */
export class BufferedReader {
  private readonly chunks: Buffer[] = [];
  /** Consumed bytes at the front of chunks[0]. */
  private head = 0;
  private buffered = 0;
  private waiter: Waiter | undefined;
  private closedError: Error | undefined;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterMark = 8 * 1024 * 1024,
  ) {
    socket.on("data", (chunk: Buffer) => this.push(chunk));
    socket.on("end", () => this.fail(new StreamClosedError("peer closed the connection")));
    socket.on("close", () => this.fail(new StreamClosedError()));
    socket.on("error", (e) => this.fail(new StreamClosedError(`connection error: ${e.message}`, { cause: e })));
  }

  /** Bytes received but not yet consumed. */
  get available(): number {
    return this.buffered;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Take exactly n bytes if they are already here; undefined otherwise (lets hot loops skip a promise). */
  tryRead(n: number): Buffer | undefined {
    if (this.buffered < n) return undefined;
    return this.take(n);
  }

  /** Wait for and take exactly n bytes. Rejects with StreamClosedError if the stream ends first. */
  async read(n: number): Promise<Buffer> {
    const ready = this.tryRead(n);
    if (ready) return ready;
    await this.waitFor(n);
    return this.take(n);
  }

  /** Consume and drop n bytes without assembling them (for payloads we refuse). */
  async discard(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0) await this.waitFor(1);
      const step = Math.min(left, this.buffered);
      this.skip(step);
      left -= step;
    }
  }

  private waitFor(n: number): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.waiter) return Promise.reject(new Error("BufferedReader: concurrent reads are not supported"));
    return new Promise<void>((resolve, reject) => {
      this.waiter = { need: n, resolve, reject };
      // A single large read may need more than the high-water mark: let it fill.
      if (this.paused) this.resume();
    });
  }

  private push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const w = this.waiter;
    if (w && this.buffered >= w.need) {
      this.waiter = undefined;
      w.resolve();
    }
    const need = this.waiter?.need ?? 0;
    if (!this.paused && this.buffered > Math.max(this.highWaterMark, need)) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private fail(e: Error): void {
    if (this.closedError) return;
    this.closedError = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private resume(): void {
    this.paused = false;
    this.socket.resume();
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    const inFirst = first.length - this.head;
    let out: Buffer;
    if (inFirst >= n) {
      out = first.subarray(this.head, this.head + n);
      this.skip(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const step = Math.min(n - filled, c.length - this.head);
        c.copy(out, filled, this.head, this.head + step);
        filled += step;
        this.skip(step);
      }
    }
    return out;
  }

  /** Advance past n bytes (n ≤ buffered). */
  private skip(n: number): void {
    let left = n;
    this.buffered -= n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const inChunk = c.length - this.head;
      if (left >= inChunk) {
        this.chunks.shift();
        this.head = 0;
        left -= inChunk;
      } else {
        this.head += left;
        left = 0;
      }
    }
    if (this.paused && this.buffered <= this.highWaterMark) this.resume();
  }
}
