import net from "node:net";
import { BufferedReader, StreamClosedError } from "./buffered-reader.js";
import * as P from "./protocol.js";

export type NbdTarget = { host?: string; port: number } | { socketPath: string };

/** A command the server answered with a non-zero error. */
export class NbdCommandError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly command: string,
  ) {
    super(`NBD ${command} failed: ${P.nbdErrnoName(errno)}`);
    this.name = "NbdCommandError";
    this.code = P.nbdErrnoName(errno);
  }
}

/** The server refused an option during the handshake. */
export class NbdOptionError extends Error {
  constructor(
    readonly option: number,
    readonly replyType: number,
    readonly serverMessage: string,
  ) {
    super(`NBD option ${option} refused (reply 0x${replyType.toString(16)})${serverMessage ? `: ${serverMessage}` : ""}`);
    this.name = "NbdOptionError";
  }
}

export interface NbdExportInfo {
  size: number;
  transmissionFlags: number;
  name?: string;
  description?: string;
  blockSize?: { minimum: number; preferred: number; maximum: number };
}

export interface NbdListEntry {
  name: string;
  description: string;
}

interface Pending {
  cmd: number;
  length: number;
  resolve: (data: Buffer | undefined) => void;
  reject: (e: Error) => void;
}

const CMD_NAMES: Record<number, string> = {
  [P.NBD_CMD_READ]: "READ",
  [P.NBD_CMD_WRITE]: "WRITE",
  [P.NBD_CMD_FLUSH]: "FLUSH",
  [P.NBD_CMD_TRIM]: "TRIM",
  [P.NBD_CMD_WRITE_ZEROES]: "WRITE_ZEROES",
};

function openSocket(target: NbdTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s =
      "socketPath" in target
        ? net.createConnection({ path: target.socketPath })
        : net.createConnection({ host: target.host ?? "127.0.0.1", port: target.port });
    s.setNoDelay(true);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/**
 * The option-haggling phase of one connection. Exposed so tests can drive individual options;
 * most callers want NbdClient.connect / list / info.
 */
export class NbdHandshake {
  readonly reader: BufferedReader;
  serverFlags = 0;

  private constructor(readonly socket: net.Socket) {
    this.reader = new BufferedReader(socket);
    // Errors surface through the reader; keep Node from treating them as unhandled.
    socket.on("error", () => {});
  }

  static async open(target: NbdTarget): Promise<NbdHandshake> {
    const h = new NbdHandshake(await openSocket(target));
    try {
      const greet = await h.reader.read(18);
      if (greet.readBigUInt64BE(0) !== P.NBD_MAGIC) throw new Error("not an NBD server (bad NBDMAGIC)");
      if (greet.readBigUInt64BE(8) !== P.NBD_OPTS_MAGIC) throw new Error("server does not speak newstyle NBD");
      h.serverFlags = greet.readUInt16BE(16);
      if (!(h.serverFlags & P.NBD_FLAG_FIXED_NEWSTYLE)) throw new Error("server does not speak fixed newstyle NBD");
      const cflags = Buffer.alloc(4);
      cflags.writeUInt32BE(P.NBD_FLAG_C_FIXED_NEWSTYLE | (h.serverFlags & P.NBD_FLAG_NO_ZEROES ? P.NBD_FLAG_C_NO_ZEROES : 0));
      h.socket.write(cflags);
      return h;
    } catch (e) {
      h.socket.destroy();
      throw e;
    }
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0)): void {
    const hdr = Buffer.alloc(P.NBD_OPTION_HEADER_SIZE);
    hdr.writeBigUInt64BE(P.NBD_OPTS_MAGIC, 0);
    hdr.writeUInt32BE(option, 8);
    hdr.writeUInt32BE(data.length, 12);
    this.socket.write(data.length ? Buffer.concat([hdr, data]) : hdr);
  }

  async readReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const hdr = await this.reader.read(P.NBD_OPTION_REPLY_HEADER_SIZE);
    if (hdr.readBigUInt64BE(0) !== P.NBD_REP_MAGIC) throw new Error("bad option reply magic");
    const option = hdr.readUInt32BE(8);
    const type = hdr.readUInt32BE(12);
    const len = hdr.readUInt32BE(16);
    const data = Buffer.from(await this.reader.read(len));
    return { option, type, data };
  }

  /** NBD_OPT_INFO or NBD_OPT_GO; resolves after NBD_REP_ACK, throws NbdOptionError on refusal. */
  async infoOrGo(option: number, exportName: string, requests: number[]): Promise<NbdExportInfo> {
    const name = Buffer.from(exportName, "utf8");
    const data = Buffer.alloc(4 + name.length + 2 + 2 * requests.length);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    data.writeUInt16BE(requests.length, 4 + name.length);
    for (const [i, r] of requests.entries()) data.writeUInt16BE(r, 6 + name.length + 2 * i);
    this.sendOption(option, data);
    const info: NbdExportInfo = { size: -1, transmissionFlags: 0 };
    for (;;) {
      const rep = await this.readReply();
      if (rep.type === P.NBD_REP_ACK) break;
      if (rep.type & P.NBD_REP_FLAG_ERROR) throw new NbdOptionError(option, rep.type, rep.data.toString("utf8"));
      if (rep.type !== P.NBD_REP_INFO || rep.data.length < 2) continue;
      const kind = rep.data.readUInt16BE(0);
      if (kind === P.NBD_INFO_EXPORT) {
        info.size = P.readU64(rep.data, 2);
        info.transmissionFlags = rep.data.readUInt16BE(10);
      } else if (kind === P.NBD_INFO_NAME) {
        info.name = rep.data.subarray(2).toString("utf8");
      } else if (kind === P.NBD_INFO_DESCRIPTION) {
        info.description = rep.data.subarray(2).toString("utf8");
      } else if (kind === P.NBD_INFO_BLOCK_SIZE) {
        info.blockSize = {
          minimum: rep.data.readUInt32BE(2),
          preferred: rep.data.readUInt32BE(6),
          maximum: rep.data.readUInt32BE(10),
        };
      }
    }
    if (info.size < 0) throw new Error("server acknowledged without NBD_INFO_EXPORT");
    return info;
  }

  async list(): Promise<NbdListEntry[]> {
    this.sendOption(P.NBD_OPT_LIST);
    const out: NbdListEntry[] = [];
    for (;;) {
      const rep = await this.readReply();
      if (rep.type === P.NBD_REP_ACK) return out;
      if (rep.type & P.NBD_REP_FLAG_ERROR) throw new NbdOptionError(P.NBD_OPT_LIST, rep.type, rep.data.toString("utf8"));
      if (rep.type === P.NBD_REP_SERVER) {
        const n = rep.data.readUInt32BE(0);
        out.push({
          name: rep.data.subarray(4, 4 + n).toString("utf8"),
          description: rep.data.subarray(4 + n).toString("utf8"),
        });
      }
    }
  }

  /** NBD_OPT_ABORT, then close. */
  async abort(): Promise<void> {
    this.sendOption(P.NBD_OPT_ABORT);
    // The server may close without replying; either outcome is fine.
    await this.readReply().catch(() => undefined);
    this.socket.destroy();
  }
}

/**
 * A small pipelined NBD client (fixed newstyle, NBD_OPT_GO, simple replies). Any number of
 * requests may be outstanding; replies are matched by cookie, so out-of-order servers work too.
 */
export class NbdClient {
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  private failure: Error | undefined;
  private readonly header = Buffer.alloc(P.NBD_REQUEST_SIZE);
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly socket: net.Socket,
    private readonly reader: BufferedReader,
    readonly info: NbdExportInfo,
  ) {
    void this.replyLoop();
  }

  get size(): number {
    return this.info.size;
  }

  get transmissionFlags(): number {
    return this.info.transmissionFlags;
  }

  /** Requests sent whose replies have not arrived yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  static async connect(target: NbdTarget, exportName: string): Promise<NbdClient> {
    const h = await NbdHandshake.open(target);
    try {
      const info = await h.infoOrGo(P.NBD_OPT_GO, exportName, [P.NBD_INFO_BLOCK_SIZE]);
      return new NbdClient(h.socket, h.reader, info);
    } catch (e) {
      h.socket.destroy();
      throw e;
    }
  }

  static async list(target: NbdTarget): Promise<NbdListEntry[]> {
    const h = await NbdHandshake.open(target);
    try {
      const l = await h.list();
      await h.abort();
      return l;
    } finally {
      h.socket.destroy();
    }
  }

  static async info(target: NbdTarget, exportName: string, requests: number[] = [P.NBD_INFO_NAME, P.NBD_INFO_DESCRIPTION, P.NBD_INFO_BLOCK_SIZE]): Promise<NbdExportInfo> {
    const h = await NbdHandshake.open(target);
    try {
      const i = await h.infoOrGo(P.NBD_OPT_INFO, exportName, requests);
      await h.abort();
      return i;
    } finally {
      h.socket.destroy();
    }
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.request(P.NBD_CMD_READ, 0, offset, length) as Promise<Buffer>;
  }

  async write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    await this.request(P.NBD_CMD_WRITE, options.fua ? P.NBD_CMD_FLAG_FUA : 0, offset, data.length, data);
  }

  async writeZeroes(offset: number, length: number, options: { fua?: boolean; noHole?: boolean } = {}): Promise<void> {
    const flags = (options.fua ? P.NBD_CMD_FLAG_FUA : 0) | (options.noHole ? P.NBD_CMD_FLAG_NO_HOLE : 0);
    await this.request(P.NBD_CMD_WRITE_ZEROES, flags, offset, length);
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.request(P.NBD_CMD_TRIM, 0, offset, length);
  }

  async flush(): Promise<void> {
    await this.request(P.NBD_CMD_FLUSH, 0, 0, 0);
  }

  /** Low-level: send any command. Resolves with the payload for READ. */
  request(cmd: number, flags: number, offset: number, length: number, payload?: Buffer): Promise<Buffer | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const cookie = this.nextCookie++;
    const h = this.header;
    h.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(cmd, 6);
    h.writeBigUInt64BE(cookie, 8);
    P.writeU64(h, offset, 16);
    h.writeUInt32BE(length, 24);
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { cmd, length, resolve, reject });
      // socket.write copies nothing but keeps a reference, so the shared header must be copied.
      if (payload) {
        this.socket.cork();
        this.socket.write(Buffer.from(h));
        this.socket.write(payload);
        this.socket.uncork();
      } else {
        this.socket.write(Buffer.from(h));
      }
    });
  }

  /** Send NBD_CMD_DISC after outstanding replies arrive, then close the socket. */
  async close(): Promise<void> {
    if (this.failure) {
      this.socket.destroy();
      return;
    }
    if (this.pending.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.failure) {
      this.socket.destroy();
      return;
    }
    const disc = Buffer.alloc(P.NBD_REQUEST_SIZE);
    disc.writeUInt32BE(P.NBD_REQUEST_MAGIC, 0);
    disc.writeUInt16BE(P.NBD_CMD_DISC, 6);
    this.failure = new StreamClosedError("client closed");
    await new Promise<void>((resolve) => {
      this.socket.end(disc, () => resolve());
      this.socket.once("close", () => resolve());
    });
    this.socket.destroy();
  }

  private async replyLoop(): Promise<void> {
    try {
      for (;;) {
        const hdr = this.reader.tryRead(P.NBD_SIMPLE_REPLY_SIZE) ?? (await this.reader.read(P.NBD_SIMPLE_REPLY_SIZE));
        if (hdr.readUInt32BE(0) !== P.NBD_SIMPLE_REPLY_MAGIC) throw new Error("bad reply magic from server");
        const errno = hdr.readUInt32BE(4);
        const cookie = hdr.readBigUInt64BE(8);
        const p = this.pending.get(cookie);
        if (!p) throw new Error(`reply for unknown cookie ${cookie}`);
        this.pending.delete(cookie);
        if (this.pending.size === 0) this.wakeIdle();
        if (errno !== 0) {
          p.reject(new NbdCommandError(errno, CMD_NAMES[p.cmd] ?? `CMD_${p.cmd}`));
        } else if (p.cmd === P.NBD_CMD_READ) {
          const data = this.reader.tryRead(p.length) ?? (await this.reader.read(p.length));
          p.resolve(data);
        } else {
          p.resolve(undefined);
        }
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failure ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.wakeIdle();
      this.socket.destroy();
    }
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}
