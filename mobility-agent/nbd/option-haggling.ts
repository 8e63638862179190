import type { Socket } from "node:net";
import { type BufferedReader, NBD as P } from "../../common/nbd/index.js";
import type { Logger } from "../../common/logger.js";
import type { NbdExport } from "./nbd-export.js";

/** Largest request payload we accept and advertise in NBD_INFO_BLOCK_SIZE. */
export const MAX_PAYLOAD = 32 * 1024 * 1024;
const PREFERRED_BLOCK = 4096;
/** Option payloads are names plus a few info requests; anything bigger is refused. */
const MAX_OPTION_DATA = 64 * 1024;

const KNOWN_CLIENT_FLAGS = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES;

/** Marks a protocol violation after which the connection cannot continue. */
export class ProtocolError extends Error {}

/** Where exports are looked up. */
export interface ExportDirectory {
  findExport(name: string): NbdExport | undefined;
  listExports(): readonly NbdExport[];
}

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
 * The server side of fixed-newstyle option haggling. Only simple replies are offered (no
 * STRUCTURED_REPLY), so every reply is one header plus, for a read, its payload; replies may still
 * come out of order, matched to their requests by cookie as the protocol allows.
 */
export class OptionHaggling {
  private noZeroes = false;
  /** True while an option is being answered (a graceful close waits for it). */
  busy = false;

  constructor(
    private readonly socket: Socket,
    private readonly reader: BufferedReader,
    private readonly exports: ExportDirectory,
    private readonly log: Logger,
    private readonly closing: () => boolean,
  ) {}

  /** Returns the export chosen for transmission, or undefined when the client left without one. */
  async run(): Promise<NbdExport | undefined> {
    const greet = Buffer.alloc(18);
    greet.writeBigUInt64BE(P.NBD_MAGIC, 0);
    greet.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 8);
    greet.writeUInt16BE(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES, 16);
    this.socket.write(greet);

    const cflags = (await this.reader.read(4)).readUInt32BE(0);
    if (cflags & ~KNOWN_CLIENT_FLAGS) throw new ProtocolError(`unknown client flags 0x${cflags.toString(16)}`);
    this.noZeroes = (cflags & P.NBD_FLAG_C_NO_ZEROES) !== 0;

    for (;;) {
      if (this.closing()) return undefined;
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
        if (this.closing() && option !== P.NBD_OPT_ABORT) {
          this.optionReply(option, P.NBD_REP_ERR_SHUTDOWN, Buffer.from("server is shutting down"));
          return undefined;
        }
        switch (option) {
          case P.NBD_OPT_EXPORT_NAME:
            return this.optExportName(data);
          case P.NBD_OPT_ABORT:
            this.optionReply(option, P.NBD_REP_ACK);
            return undefined;
          case P.NBD_OPT_LIST:
            this.optList(data);
            break;
          case P.NBD_OPT_INFO:
          case P.NBD_OPT_GO: {
            const e = this.optInfoGo(option, data);
            if (e && option === P.NBD_OPT_GO) return e;
            break;
          }
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
    const exact = this.exports.findExport(name);
    if (exact || name !== "") return exact;
    // The empty name means "the default export": the sole one, if there is exactly one.
    const all = this.exports.listExports();
    return all.length === 1 ? all[0] : undefined;
  }

  private optExportName(data: Buffer): NbdExport {
    const name = data.toString("utf8");
    const e = this.lookup(name);
    // NBD_OPT_EXPORT_NAME has no error reply: the protocol says to just close.
    if (!e) throw new ProtocolError(`NBD_OPT_EXPORT_NAME for unknown export "${name}"`);
    const reply = Buffer.alloc(this.noZeroes ? 10 : 134);
    P.writeU64(reply, e.size, 0);
    reply.writeUInt16BE(transmissionFlags(e), 8);
    this.socket.write(reply);
    this.log.info("client attached (EXPORT_NAME)", { export: e.name });
    return e;
  }

  private optList(data: Buffer): void {
    if (data.length !== 0) {
      this.optionReply(P.NBD_OPT_LIST, P.NBD_REP_ERR_INVALID, Buffer.from("NBD_OPT_LIST takes no data"));
      return;
    }
    for (const e of this.exports.listExports()) {
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

  /** Returns the export when it exists and its information was sent. */
  private optInfoGo(option: number, data: Buffer): NbdExport | undefined {
    const invalid = (why: string) => {
      this.optionReply(option, P.NBD_REP_ERR_INVALID, Buffer.from(why));
      return undefined;
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
      return undefined;
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
    if (option === P.NBD_OPT_GO) this.log.info("client attached (GO)", { export: e.name });
    return e;
  }

  private infoString(option: number, kind: number, s: string): void {
    const str = Buffer.from(s, "utf8");
    const body = Buffer.alloc(2 + str.length);
    body.writeUInt16BE(kind, 0);
    str.copy(body, 2);
    this.optionReply(option, P.NBD_REP_INFO, body);
  }
}
