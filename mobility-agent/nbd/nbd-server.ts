import fs from "node:fs";
import net from "node:net";
import { type Logger, silentLogger } from "../../common/logger.js";
import { NbdConnection, type NbdConnectionHost } from "./nbd-connection.js";
import type { NbdExport } from "./nbd-export.js";
import { OverlapTracker } from "./overlap-tracker.js";

export interface NbdServerOptions {
  exports: NbdExport[];
  /** TCP listen address; default 127.0.0.1 (NBD has no authentication: keep it local unless you mean it). */
  host?: string;
  /** TCP port; 0 (default) picks a free one, see `tcpPort`. */
  port?: number;
  /** Set false to serve only the unix socket. Default true. */
  tcp?: boolean;
  /** Also listen on this unix socket (a stale socket file is replaced). */
  socketPath?: string;
  logger?: Logger;
}

export interface NbdServerStats {
  /** Connections open right now. */
  connections: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  reads: number;
  /** WRITE and WRITE_ZEROES commands applied. */
  writes: number;
  /** Bytes applied by those commands. */
  bytesWritten: number;
}

/**
 * NBD server (fixed newstyle, simple replies) serving any number of named exports. Requests run
 * concurrently when their ranges are disjoint and in arrival order when they overlap; replies go
 * out as each request finishes, batched per event-loop tick.
 */
export class NbdServer {
  private readonly exports = new Map<string, NbdExport>();
  private readonly connections = new Set<NbdConnection>();
  private readonly listeners: net.Server[] = [];
  private readonly logger: Logger;
  private readonly host: string;
  private port = -1;
  private nextId = 1;
  private readonly counters = { reads: 0, writes: 0, bytesWritten: 0 };
  /** Per export, across its connections: overlapping requests land in arrival order. */
  private readonly orders = new WeakMap<NbdExport, OverlapTracker>();

  constructor(private readonly options: NbdServerOptions) {
    for (const e of options.exports) this.addExport(e);
    this.logger = options.logger ?? silentLogger();
    this.host = options.host ?? "127.0.0.1";
  }

  /** The bound TCP port (after start). */
  get tcpPort(): number {
    if (this.port < 0) throw new Error("NbdServer: not listening on TCP (call start() first)");
    return this.port;
  }

  async start(): Promise<void> {
    if (this.listeners.length) return;
    if (this.options.tcp !== false) {
      const s = this.makeListener();
      await listen(s, { host: this.host, port: this.options.port ?? 0 });
      this.port = (s.address() as net.AddressInfo).port;
      this.logger.info("NBD server listening", { host: this.host, port: this.port });
    }
    if (this.options.socketPath) {
      const path = this.options.socketPath;
      removeStaleSocket(path);
      await listen(this.makeListener(), { path });
      this.logger.info("NBD server listening", { socket: path });
    }
  }

  /** Stop accepting, let each connection finish its current request, close them, release the socket file. */
  async stop(): Promise<void> {
    const closing = this.listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    this.listeners.length = 0;
    await Promise.all([...this.connections].map((c) => c.close()));
    await Promise.all(closing);
    if (this.options.socketPath) removeStaleSocket(this.options.socketPath);
    this.port = -1;
  }

  uri(exportName: string): string {
    const h = this.host === "0.0.0.0" ? "127.0.0.1" : this.host === "::" ? "[::1]" : this.host.includes(":") ? `[${this.host}]` : this.host;
    return `nbd://${h}:${this.tcpPort}/${encodeURIComponent(exportName)}`;
  }

  unixUri(exportName: string): string {
    if (!this.options.socketPath) throw new Error("NbdServer: no socketPath configured");
    return `nbd+unix:///${encodeURIComponent(exportName)}?socket=${encodeURIComponent(this.options.socketPath).replaceAll("%2F", "/")}`;
  }

  addExport(e: NbdExport): void {
    if (this.exports.has(e.name)) throw new Error(`NBD export "${e.name}" already exists`);
    if (Buffer.byteLength(e.name) > 4096) throw new Error("NBD export name longer than 4096 bytes");
    this.exports.set(e.name, e);
  }

  /** Remove an export and close (gracefully) the connections attached to it. */
  removeExport(name: string): void {
    const e = this.exports.get(name);
    if (!e) return;
    this.exports.delete(name);
    for (const c of this.connections) if (c.export === e) void c.close();
  }

  stats(): NbdServerStats {
    return { connections: this.connections.size, connectionsTotal: this.nextId - 1, ...this.counters };
  }

  private makeListener(): net.Server {
    const hostApi: NbdConnectionHost = {
      findExport: (n) => this.exports.get(n),
      listExports: () => [...this.exports.values()],
      orderOf: (e) => {
        const known = this.orders.get(e);
        if (known) return known;
        const order = new OverlapTracker();
        this.orders.set(e, order);
        return order;
      },
      counters: this.counters,
      logger: this.logger,
    };
    const s = net.createServer((socket) => {
      const conn = new NbdConnection(socket, hostApi, this.nextId++);
      this.connections.add(conn);
      this.logger.debug("NBD connection", { conn: conn.id, remote: socket.remoteAddress ?? "unix" });
      void conn.run().finally(() => {
        socket.once("close", () => this.connections.delete(conn));
        if (socket.destroyed) this.connections.delete(conn);
      });
    });
    s.on("error", (e) => this.logger.error("NBD listener error", { error: e.message }));
    this.listeners.push(s);
    return s;
  }
}

function listen(s: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(opts, () => {
      s.off("error", reject);
      resolve();
    });
  });
}

function removeStaleSocket(path: string): void {
  try {
    if (fs.statSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    // Missing is fine.
  }
}
