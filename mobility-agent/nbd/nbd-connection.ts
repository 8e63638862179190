import type { Socket } from "node:net";
import { isPromise } from "../../common/async/index.js";
import { BufferedReader, NBD as P, StreamClosedError } from "../../common/nbd/index.js";
import type { Logger } from "../../common/logger.js";
import type { NbdExport } from "./nbd-export.js";

/** What a connection needs from its server. */
export interface NbdConnectionHost {
  findExport(name: string): NbdExport | undefined;
  listExports(): readonly NbdExport[];
  readonly counters: { reads: number; writes: number; bytesWritten: number };
  readonly logger: Logger;
}

/** Largest request payload we accept and advertise in NBD_INFO_BLOCK_SIZE. */
export const MAX_PAYLOAD = 32 * 1024 * 1024;
const PREFERRED_BLOCK = 4096;
/** Option payloads are names plus a few info requests; anything bigger is refused. */
const MAX_OPTION_DATA = 64 * 1024;
/** Stop reading new requests while this much reply data is queued on the socket. */
const REPLY_HIGH_WATER = 16 * 1024 * 1024;

const KNOWN_CLIENT_FLAGS = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES;

/** Marks a protocol violation after which the connection cannot continue. */
class ProtocolError extends Error {}

function transmissionFlags(e: NbdExport): number {
  return (
    P.NBD_FLAG_HAS_FLAGS |
    P.NBD_FLAG_SEND_FLUSH |
    P.NBD_FLAG_SEND_FUA |
    P.NBD_FLAG_SEND_TRIM |
    P.NBD_FLAG_SEND_WRITE_ZEROES |
    (e.canMultiConn ? P.NBD_FLAG_CAN_MULTI_CONN : 0)
  );
}

/**
 * One client: fixed-newstyle option haggling, then the transmission phase. Requests are executed
 * strictly in arrival order (so overlapping pipelined writes land in order); replies are batched
 * with cork while more requests are already buffered.
 */
export class NbdConnection {
  readonly reader: BufferedReader;
  export: NbdExport | undefined;
  private noZeroes = false;
  private closing = false;
  /** True while a request or option is being handled (a graceful close waits for it). */
  private busy = false;
  private corked = false;
  private readonly closed: Promise<void>;
  private readonly log: Logger;

  constructor(
    readonly socket: Socket,
    private readonly host: NbdConnectionHost,
    readonly id: number,
  ) {
    socket.setNoDelay(true);
    this.reader = new BufferedReader(socket);
    this.log = host.logger.child({ conn: id });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", (e) => this.log.debug("socket error", { error: e.message }));
  }

  /** Runs the whole session; never rejects. */
  async run(): Promise<void> {
    try {
      const go = await this.handshake();
      if (go) await this.transmission();
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

  /** Finish the request in hand, then close. Resolves once the socket is gone. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    if (!this.busy) this.endSocket();
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  private endSocket(): void {
    this.uncork();
    if (!this.socket.destroyed) this.socket.end();
    // A client that never closes its side must not hold the server open.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  // ---- handshake -------------------------------------------------------------------------------

  /** Returns true when an export was selected and transmission should start. */
  private async handshake(): Promise<boolean> {
    const greet = Buffer.alloc(18);
    greet.writeBigUInt64BE(P.NBD_MAGIC, 0);
    greet.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 8);
    greet.writeUInt16BE(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES, 16);
    this.socket.write(greet);

    const cflags = (await this.reader.read(4)).readUInt32BE(0);
    if (cflags & ~KNOWN_CLIENT_FLAGS) throw new ProtocolError(`unknown client flags 0x${cflags.toString(16)}`);
    this.noZeroes = (cflags & P.NBD_FLAG_C_NO_ZEROES) !== 0;

    for (;;) {
      if (this.closing) return false;
      const hdr = await this.reader.read(P.NBD_OPTION_HEADER_SIZE);
      if (hdr.readBigUInt64BE(0) !== P.NBD_OPTS_MAGIC) throw new ProtocolError("bad option magic");
      const option = hdr.readUInt32BE(8);
      const len = hdr.readUInt32BE(12);
      this.busy = true;
      try {
        if (len > MAX_OPTION_DATA) {
          if (option === P.NBD_OPT_EXPORT_NAME) throw new ProtocolError("export name too long");
          await this.reader.discard(len);
          this.optionReply(option, P.NBD_REP_ERR_TOO_BIG, Buffer.from("option data too large"));
          continue;
        }
        const data = await this.reader.read(len);
        if (this.closing && option !== P.NBD_OPT_ABORT) {
          this.optionReply(option, P.NBD_REP_ERR_SHUTDOWN, Buffer.from("server is shutting down"));
          return false;
        }
        switch (option) {
          case P.NBD_OPT_EXPORT_NAME:
            return this.optExportName(data);
          case P.NBD_OPT_ABORT:
            this.optionReply(option, P.NBD_REP_ACK);
            return false;
          case P.NBD_OPT_LIST:
            this.optList(data);
            break;
          case P.NBD_OPT_INFO:
          case P.NBD_OPT_GO:
            if (this.optInfoGo(option, data) && option === P.NBD_OPT_GO) return true;
            break;
          default:
            // STARTTLS, STRUCTURED_REPLY, meta contexts, extended headers: simple replies only.
            this.optionReply(option, P.NBD_REP_ERR_UNSUP, Buffer.from(`option ${option} not supported`));
        }
      } finally {
        this.busy = false;
      }
    }
  }

  private optionReply(option: number, type: number, data?: Buffer): void {
    const hdr = Buffer.alloc(P.NBD_OPTION_REPLY_HEADER_SIZE);
    hdr.writeBigUInt64BE(P.NBD_REP_MAGIC, 0);
    hdr.writeUInt32BE(option, 8);
    hdr.writeUInt32BE(type >>> 0, 12);
    hdr.writeUInt32BE(data?.length ?? 0, 16);
    this.socket.write(data?.length ? Buffer.concat([hdr, data]) : hdr);
  }

  private lookup(name: string): NbdExport | undefined {
    const exact = this.host.findExport(name);
    if (exact || name !== "") return exact;
    // The empty name means "the default export": the sole one, if there is exactly one.
    const all = this.host.listExports();
    return all.length === 1 ? all[0] : undefined;
  }

  private optExportName(data: Buffer): boolean {
    const name = data.toString("utf8");
    const e = this.lookup(name);
    // NBD_OPT_EXPORT_NAME has no error reply: the protocol says to just close.
    if (!e) throw new ProtocolError(`NBD_OPT_EXPORT_NAME for unknown export "${name}"`);
    const reply = Buffer.alloc(this.noZeroes ? 10 : 134);
    P.writeU64(reply, e.size, 0);
    reply.writeUInt16BE(transmissionFlags(e), 8);
    this.socket.write(reply);
    this.export = e;
    this.log.info("client attached (EXPORT_NAME)", { export: e.name });
    return true;
  }

  private optList(data: Buffer): void {
    if (data.length !== 0) {
      this.optionReply(P.NBD_OPT_LIST, P.NBD_REP_ERR_INVALID, Buffer.from("NBD_OPT_LIST takes no data"));
      return;
    }
    for (const e of this.host.listExports()) {
      const name = Buffer.from(e.name, "utf8");
      const desc = Buffer.from(e.description ?? "", "utf8");
      const body = Buffer.alloc(4 + name.length + desc.length);
      body.writeUInt32BE(name.length, 0);
      name.copy(body, 4);
      desc.copy(body, 4 + name.length);
      this.optionReply(P.NBD_OPT_LIST, P.NBD_REP_SERVER, body);
    }
    this.optionReply(P.NBD_OPT_LIST, P.NBD_REP_ACK);
  }

  /** Returns true when the export exists and its information was sent. */
  private optInfoGo(option: number, data: Buffer): boolean {
    const invalid = (why: string) => {
      this.optionReply(option, P.NBD_REP_ERR_INVALID, Buffer.from(why));
      return false;
    };
    if (data.length < 6) return invalid("option data too short");
    const nameLen = data.readUInt32BE(0);
    if (nameLen > P.NBD_MAX_STRING || 4 + nameLen + 2 > data.length) return invalid("bad export name length");
    const name = data.toString("utf8", 4, 4 + nameLen);
    const count = data.readUInt16BE(4 + nameLen);
    if (data.length !== 4 + nameLen + 2 + 2 * count) return invalid("bad information request count");
    const requests = new Set<number>();
    for (let i = 0; i < count; i++) requests.add(data.readUInt16BE(6 + nameLen + 2 * i));

    const e = this.lookup(name);
    if (!e) {
      this.optionReply(option, P.NBD_REP_ERR_UNKNOWN, Buffer.from(`unknown export "${name}"`));
      return false;
    }
    const exp = Buffer.alloc(12);
    exp.writeUInt16BE(P.NBD_INFO_EXPORT, 0);
    P.writeU64(exp, e.size, 2);
    exp.writeUInt16BE(transmissionFlags(e), 10);
    this.optionReply(option, P.NBD_REP_INFO, exp);
    if (requests.has(P.NBD_INFO_NAME)) this.infoString(option, P.NBD_INFO_NAME, e.name);
    if (requests.has(P.NBD_INFO_DESCRIPTION) && e.description) this.infoString(option, P.NBD_INFO_DESCRIPTION, e.description);
    // Sent unasked too (the protocol allows it): minimum 1 means no alignment demands on clients.
    const bs = Buffer.alloc(14);
    bs.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 0);
    bs.writeUInt32BE(1, 2);
    bs.writeUInt32BE(PREFERRED_BLOCK, 6);
    bs.writeUInt32BE(MAX_PAYLOAD, 10);
    this.optionReply(option, P.NBD_REP_INFO, bs);
    this.optionReply(option, P.NBD_REP_ACK);
    if (option === P.NBD_OPT_GO) {
      this.export = e;
      this.log.info("client attached (GO)", { export: e.name });
    }
    return true;
  }

  private infoString(option: number, kind: number, s: string): void {
    const str = Buffer.from(s, "utf8");
    const body = Buffer.alloc(2 + str.length);
    body.writeUInt16BE(kind, 0);
    str.copy(body, 2);
    this.optionReply(option, P.NBD_REP_INFO, body);
  }

  // ---- transmission ----------------------------------------------------------------------------

  private async transmission(): Promise<void> {
    const e = this.export!;
    const reader = this.reader;
    for (;;) {
      if (this.closing) return;
      let hdr = reader.tryRead(P.NBD_REQUEST_SIZE);
      if (hdr) {
        // More requests already queued: batch their replies into fewer syscalls.
        if (!this.corked) {
          this.socket.cork();
          this.corked = true;
        }
      } else {
        this.uncork();
        hdr = await reader.read(P.NBD_REQUEST_SIZE);
      }
      if (hdr.readUInt32BE(0) !== P.NBD_REQUEST_MAGIC) throw new ProtocolError("bad request magic");
      const flags = hdr.readUInt16BE(4);
      const type = hdr.readUInt16BE(6);
      // The header may be a view of a socket chunk; the cookie must outlive it untouched, which it
      // does (chunks are never reused), so a view is enough.
      const cookie = hdr.subarray(8, 16);
      const offset = P.readU64(hdr, 16);
      const length = hdr.readUInt32BE(24);
      if (type === P.NBD_CMD_DISC) return;
      this.busy = true;
      try {
        await this.execute(e, type, flags, cookie, offset, length);
      } finally {
        this.busy = false;
      }
      if (this.socket.writableLength > REPLY_HIGH_WATER) await this.drain();
    }
  }

  private async execute(e: NbdExport, type: number, flags: number, cookie: Buffer, offset: number, length: number): Promise<void> {
    const fua = (flags & P.NBD_CMD_FLAG_FUA) !== 0;
    const inRange = offset + length <= e.size;
    const allowed = P.NBD_CMD_FLAG_FUA | (type === P.NBD_CMD_WRITE_ZEROES ? P.NBD_CMD_FLAG_NO_HOLE : 0);
    const badFlags = (flags & ~allowed) !== 0;
    const counters = this.host.counters;
    switch (type) {
      case P.NBD_CMD_READ: {
        if (badFlags || !inRange || length > MAX_PAYLOAD) return this.reply(cookie, P.NBD_EINVAL);
        let data: Buffer;
        try {
          const r = e.read(offset, length);
          data = isPromise<Buffer>(r) ? await this.around(r) : r;
        } catch (err) {
          return this.reply(cookie, this.errnoOf(err));
        }
        if (data.length !== length) {
          this.log.error("export returned a short read", { export: e.name, got: data.length, wanted: length });
          return this.reply(cookie, P.NBD_EIO);
        }
        counters.reads++;
        return this.reply(cookie, 0, data);
      }
      case P.NBD_CMD_WRITE: {
        const refuse = badFlags ? P.NBD_EINVAL : length > MAX_PAYLOAD ? P.NBD_EOVERFLOW : !inRange ? P.NBD_ENOSPC : this.blocked(e);
        if (refuse) {
          // The payload follows the header regardless; skip it to stay in sync.
          await this.reader.discard(length);
          return this.reply(cookie, refuse);
        }
        const data = this.reader.tryRead(length) ?? (await this.reader.read(length));
        await this.call(() => e.write(offset, data, fua), cookie, () => {
          counters.writes++;
          counters.bytesWritten += length;
        });
        return;
      }
      case P.NBD_CMD_WRITE_ZEROES: {
        const refuse = badFlags ? P.NBD_EINVAL : !inRange ? P.NBD_ENOSPC : this.blocked(e);
        if (refuse) return this.reply(cookie, refuse);
        // NO_HOLE needs no special path: writeZeroes never punches holes.
        await this.call(() => e.writeZeroes(offset, length, fua), cookie, () => {
          counters.writes++;
          counters.bytesWritten += length;
        });
        return;
      }
      case P.NBD_CMD_TRIM: {
        const refuse = badFlags || !inRange ? P.NBD_EINVAL : this.blocked(e);
        if (refuse) return this.reply(cookie, refuse);
        await this.call(async () => {
          const t = e.trim(offset, length);
          if (isPromise(t)) await t;
          if (fua) await e.flush();
        }, cookie);
        return;
      }
      case P.NBD_CMD_FLUSH: {
        if (badFlags) return this.reply(cookie, P.NBD_EINVAL);
        await this.call(() => e.flush(), cookie);
        return;
      }
      default:
        // Unknown commands (CACHE, BLOCK_STATUS, ...) were not advertised; only WRITE carries a payload.
        return this.reply(cookie, P.NBD_EINVAL);
    }
  }

  private blocked(e: NbdExport): number {
    const reason = e.writeBlockedReason?.();
    if (reason === undefined) return 0;
    this.log.debug("write refused", { export: e.name, reason });
    return P.NBD_EPERM;
  }

  /** Run an export operation and reply success or the mapped error. */
  private async call(op: () => Promise<void> | void, cookie: Buffer, onSuccess?: () => void): Promise<void> {
    let errno = 0;
    try {
      const r = op();
      if (isPromise(r)) await this.around(r);
      onSuccess?.();
    } catch (err) {
      errno = this.errnoOf(err);
    }
    this.reply(cookie, errno);
  }

  /** Awaiting an export can take a while: let already-built replies go out meanwhile. */
  private around<T>(p: Promise<T>): Promise<T> {
    this.uncork();
    return p;
  }

  private errnoOf(err: unknown): number {
    const e = err as { nbdErrno?: number; code?: string; message?: string };
    const errno = typeof e?.nbdErrno === "number" ? e.nbdErrno : (P.nbdErrnoFromCode(e?.code) ?? P.NBD_EIO);
    this.log.warn("export operation failed", { export: this.export?.name, error: e?.message ?? String(err), errno: P.nbdErrnoName(errno) });
    return errno;
  }

  private reply(cookie: Buffer, errno: number, data?: Buffer): void {
    const hdr = Buffer.allocUnsafe(P.NBD_SIMPLE_REPLY_SIZE);
    hdr.writeUInt32BE(P.NBD_SIMPLE_REPLY_MAGIC, 0);
    hdr.writeUInt32BE(errno, 4);
    cookie.copy(hdr, 8);
    if (data && data.length > 0) {
      // Two writes under cork become one writev: the payload is never copied into a joint buffer.
      if (!this.corked) this.socket.cork();
      this.socket.write(hdr);
      this.socket.write(data);
      if (!this.corked) this.socket.uncork();
    } else {
      this.socket.write(hdr);
    }
  }

  private uncork(): void {
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
  }

  private async drain(): Promise<void> {
    this.uncork();
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
