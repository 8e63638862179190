import { createServer, type Server } from "node:net";

/**
 * Hands out loopback ports that are free right now, all different: each probe socket stays open
 * until release(), so the kernel cannot hand the same port out twice. The lab pins the ports in its
 * config so a resumed lab keeps them.
 */
export class PortAllocator {
  private readonly held: Server[] = [];

  /** `host`: the address the ports will be bound on (loopback for a lab, a joined host's --listen). */
  constructor(private readonly host = "127.0.0.1") {}

  next(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, this.host, () => {
        this.held.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  async release(): Promise<void> {
    await Promise.all(this.held.splice(0).map((s) => new Promise((r) => s.close(r))));
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
