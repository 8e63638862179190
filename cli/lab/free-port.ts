import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";

/** Lowest port handed out: above the registered services most hosts run. */
const LOWEST_PORT = 10000;
/** Attempts at a random port before falling back to one the kernel picks. */
const ATTEMPTS = 64;

/**
 * The kernel's ephemeral range (`ip_local_port_range`). Outgoing connections take their local
 * port from it, so a port probed free there can be taken by any client's connect() between the
 * probe and the daemon's bind — which is how a lab once failed with EADDRINUSE.
 */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return { low, high };
  } catch {
    // Not Linux: assume the IANA dynamic range.
  }
  return { low: 49152, high: 65535 };
}

/**
 * Hands out ports that are free right now on `host`, all different, outside the ephemeral range:
 * each probe socket stays open until release(), so no two calls return the same port. The lab pins
 * the ports in its config so a resumed lab keeps them.
 */
export class PortAllocator {
  private readonly held: Server[] = [];

  /** `host`: the address the ports will be bound on (loopback for a lab, a joined host's --listen). */
  constructor(private readonly host = "127.0.0.1") {}

  async next(): Promise<number> {
    const { low, high } = ephemeralRange();
    // Below the ephemeral range if there is room there, else above it.
    const [from, to] = low - 1 - LOWEST_PORT >= 1000 ? [LOWEST_PORT, low - 1] : [high + 1, 65535];
    for (let attempt = 0; to - from >= 1000 && attempt < ATTEMPTS; attempt++) {
      const port = from + Math.floor(Math.random() * (to - from + 1));
      const server = await this.listen(port).catch(() => undefined);
      if (server) return this.hold(server);
    }
    return this.hold(await this.listen(0));
  }

  async release(): Promise<void> {
    await Promise.all(this.held.splice(0).map((s) => new Promise((r) => s.close(r))));
  }

  private hold(server: Server): number {
    this.held.push(server);
    return (server.address() as { port: number }).port;
  }

  private listen(port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen({ port, host: this.host, exclusive: true }, () => resolve(server));
    });
  }
}

/** One free port (see PortAllocator for several). */
export async function freePort(): Promise<number> {
  const ports = new PortAllocator();
  try {
    return await ports.next();
  } finally {
    await ports.release();
  }
}
