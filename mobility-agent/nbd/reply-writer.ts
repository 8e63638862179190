import type { Socket } from "node:net";
import { NBD as P } from "../../common/nbd/index.js";

/**
 * Simple replies, batched: the socket stays corked from the first reply of a tick until the
 * tick's work is done (every request already parsed, every completion that arrived together), so
 * a burst of replies leaves in one writev and a read's payload is never copied into a joint
 * buffer. Replies go out as soon as their request is done, in any order: the cookie matches them.
 */
export class ReplyWriter {
  private corked = false;
  private readonly release = () => this.flush();

  constructor(private readonly socket: Socket) {}

  /** Bytes queued on the socket and not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  reply(cookie: Buffer, errno: number, data?: Buffer): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.release);
    }
    const hdr = Buffer.allocUnsafe(P.NBD_SIMPLE_REPLY_SIZE);
    hdr.writeUInt32BE(P.NBD_SIMPLE_REPLY_MAGIC, 0);
    hdr.writeUInt32BE(errno, 4);
    cookie.copy(hdr, 8);
    this.socket.write(hdr);
    if (data && data.length > 0) this.socket.write(data);
  }

  /** Sends what is batched now (before the connection waits for anything). */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  /** Resolves once the kernel took the queued replies (or the socket is gone). */
  async drained(): Promise<void> {
    this.flush();
    if (this.socket.writableLength === 0 || this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }
}
