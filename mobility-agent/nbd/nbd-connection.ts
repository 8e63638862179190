import type { Socket } from "node:net";
import { BufferedReader, StreamClosedError } from "../../common/nbd/index.js";
import type { Logger } from "../../common/logger.js";
import { NbdCommands, type NbdCounters } from "./nbd-commands.js";
import type { NbdExport } from "./nbd-export.js";
import { type ExportDirectory, OptionHaggling, ProtocolError } from "./option-haggling.js";
import type { OverlapTracker } from "./overlap-tracker.js";
import { ReplyWriter } from "./reply-writer.js";
import { Transmission } from "./transmission.js";

/** What a connection needs from its server. */
export interface NbdConnectionHost extends ExportDirectory {
  /** The one request order of an export, shared by all its connections. */
  orderOf(e: NbdExport): OverlapTracker;
  readonly counters: NbdCounters;
  readonly logger: Logger;
}

/** One client, from the greeting to the last reply: option haggling, then transmission. */
export class NbdConnection {
  readonly reader: BufferedReader;
  export: NbdExport | undefined;
  private closing = false;
  private ended = false;
  private haggling: OptionHaggling | undefined;
  private transmission: Transmission | undefined;
  private readonly replies: ReplyWriter;
  private readonly closed: Promise<void>;
  private readonly log: Logger;

  constructor(
    readonly socket: Socket,
    private readonly host: NbdConnectionHost,
    readonly id: number,
  ) {
    socket.setNoDelay(true);
    this.reader = new BufferedReader(socket);
    this.replies = new ReplyWriter(socket);
    this.log = host.logger.child({ conn: id });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", (e) => this.log.debug("socket error", { error: e.message }));
  }

  /** Runs the whole session; never rejects. */
  async run(): Promise<void> {
    try {
      this.haggling = new OptionHaggling(this.socket, this.reader, this.host, this.log, () => this.closing);
      const e = await this.haggling.run();
      this.haggling = undefined;
      if (e) {
        this.export = e;
        const commands = new NbdCommands(e, this.host.counters, this.log);
        this.transmission = new Transmission(this.reader, this.replies, commands, this.host.orderOf(e), () => this.closing, () => this.endSocket());
        await this.transmission.run();
      }
    } catch (e) {
      if (e instanceof StreamClosedError) {
        this.log.debug("client went away", { reason: e.message });
      } else if (e instanceof ProtocolError) {
        this.log.warn("protocol violation, closing connection", { reason: e.message });
      } else {
        this.log.error("connection failed", { error: e instanceof Error ? e.message : String(e) });
      }
      this.socket.destroy();
      return;
    }
    this.endSocket();
  }

  /** Finish the requests in hand, then close. Resolves once the socket is gone. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    const busy = this.haggling?.busy || (this.transmission !== undefined && !this.transmission.idle);
    if (!busy) this.endSocket();
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  private endSocket(): void {
    if (this.ended) return;
    this.ended = true;
    this.replies.flush();
    if (!this.socket.destroyed) this.socket.end();
    // A client that never closes its side must not hold the server open.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}
