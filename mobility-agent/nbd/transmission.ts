import { isPromise } from "../../common/async/index.js";
import { type BufferedReader, NBD as P } from "../../common/nbd/index.js";
import { accessOf, type NbdCommands, type NbdRequest, type Outcome } from "./nbd-commands.js";
import { ProtocolError } from "./option-haggling.js";
import type { OverlapTracker, Ticket } from "./overlap-tracker.js";
import type { ReplyWriter } from "./reply-writer.js";

/** Requests one connection may have started and not answered; the next waits for a slot. */
const MAX_IN_FLIGHT = 256;
/** Stop reading new requests while this much reply data is queued on the socket. */
const REPLY_HIGH_WATER = 16 * 1024 * 1024;

/**
 * The transmission phase of one connection: parses every request already received in one go,
 * starts each as soon as no earlier overlapping request is unfinished (the export's tracker,
 * shared by its connections), and replies the moment a request is done. Disjoint requests on an
 * asynchronous export run side by side; overlapping ones, in arrival order.
 */
export class Transmission {
  private inFlight = 0;
  private slotFreed: (() => void) | undefined;
  private allDone: (() => void) | undefined;
  /** True while the loop waits for the next request header. */
  private waiting = false;

  constructor(
    private readonly reader: BufferedReader,
    private readonly replies: ReplyWriter,
    private readonly commands: NbdCommands,
    private readonly order: OverlapTracker,
    private readonly closing: () => boolean,
    /** Called when the connection became idle while closing (the last reply went out). */
    private readonly onIdleWhileClosing: () => void,
  ) {}

  /** Waiting for the next request with every earlier one answered: a close may end the socket now. */
  get idle(): boolean {
    return this.waiting && this.inFlight === 0;
  }

  /** Returns after NBD_CMD_DISC or a close, once every started request was answered. */
  async run(): Promise<void> {
    try {
      await this.loop();
    } finally {
      await this.settled();
    }
  }

  private async loop(): Promise<void> {
    const reader = this.reader;
    for (;;) {
      if (this.closing()) return;
      let hdr = reader.tryRead(P.NBD_REQUEST_SIZE);
      if (!hdr) {
        // Nothing more buffered: send the batched replies before waiting.
        this.replies.flush();
        this.waiting = true;
        try {
          hdr = await reader.read(P.NBD_REQUEST_SIZE);
        } finally {
          this.waiting = false;
        }
        // A close that came while we waited: the request is not started, the socket is ending.
        if (this.closing()) return;
      }
      if (hdr.readUInt32BE(0) !== P.NBD_REQUEST_MAGIC) throw new ProtocolError("bad request magic");
      // Command flags are the 16 bits before the type; the cookie is opaque and echoed as is. The
      // header may be a view of a socket chunk, which is never reused, so views are enough.
      const flags = hdr.readUInt16BE(4);
      const type = hdr.readUInt16BE(6);
      const cookie = hdr.subarray(8, 16);
      const offset = P.readU64(hdr, 16);
      const length = hdr.readUInt32BE(24);
      if (type === P.NBD_CMD_DISC) return;
      const refused = this.commands.refusal(type, flags, offset, length);
      let data: Buffer | undefined;
      if (type === P.NBD_CMD_WRITE) {
        if (refused) {
          // The payload follows the header regardless; skip it to stay in sync.
          await reader.discard(length);
        } else {
          data = reader.tryRead(length) ?? (await reader.read(length));
        }
      }
      if (refused) {
        this.replies.reply(cookie, refused);
      } else {
        this.start({ type, flags, cookie, offset, length, data });
      }
      if (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (this.slotFreed = r));
      if (this.replies.queuedBytes > REPLY_HIGH_WATER) await this.replies.drained();
    }
  }

  private start(r: NbdRequest): void {
    const ticket = this.order.enter(r.offset, r.length, accessOf(r.type)!);
    if (ticket.ready) {
      this.inFlight++;
      void ticket.ready.then(() => {
        this.inFlight--;
        this.execute(r, ticket);
      });
      return;
    }
    this.execute(r, ticket);
  }

  private execute(r: NbdRequest, ticket: Ticket): void {
    const outcome = this.commands.run(r);
    if (!isPromise<Outcome>(outcome)) {
      this.finish(r, ticket, outcome);
      return;
    }
    this.inFlight++;
    void outcome.then((o) => {
      this.inFlight--;
      this.finish(r, ticket, o);
    });
  }

  private finish(r: NbdRequest, ticket: Ticket, o: Outcome): void {
    this.order.leave(ticket);
    this.replies.reply(r.cookie, o.errno, o.data);
    if (this.inFlight < MAX_IN_FLIGHT && this.slotFreed) {
      const wake = this.slotFreed;
      this.slotFreed = undefined;
      wake();
    }
    if (this.inFlight === 0) {
      const done = this.allDone;
      this.allDone = undefined;
      done?.();
      if (this.waiting && this.closing()) this.onIdleWhileClosing();
    }
  }

  /** Resolves once every started request was answered. */
  private async settled(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((r) => (this.allDone = r));
    this.replies.flush();
  }
}
