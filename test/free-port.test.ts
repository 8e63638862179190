import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, test } from "vitest";
import { PortAllocator } from "../cli/lab/index.js";

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return [low, high];
  } catch {
    return [49152, 65535];
  }
}

describe("lab port allocation", () => {
  test("hands out distinct ports outside the ephemeral range that a daemon can bind after release", async () => {
    const ports = new PortAllocator();
    const got: number[] = [];
    for (let i = 0; i < 20; i++) got.push(await ports.next());
    await ports.release();
    expect(new Set(got).size).toBe(got.length);
    // Outgoing connections take their local port from the ephemeral range; lab ports stay clear of it.
    const [low, high] = ephemeralRange();
    for (const p of got) expect(p < low || p > high).toBe(true);
    for (const p of got) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(p, "127.0.0.1", resolve);
      });
      await new Promise((r) => server.close(r));
    }
  });

  test("honours the host it allocates for", async () => {
    const ports = new PortAllocator("127.0.0.3");
    const p = await ports.next();
    // Held on 127.0.0.3 until release: a second bind there fails.
    await expect(
      new Promise<void>((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen({ port: p, host: "127.0.0.3", exclusive: true }, () => s.close(() => resolve()));
      }),
    ).rejects.toThrow(/EADDRINUSE/);
    await ports.release();
  });
});
