import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DgramSocket } from "node-unix-socket";
import { describe, expect, vi } from "vitest";
import { CLI_MAIN } from "../support/cli.js";
import { test } from "../support/fixtures.js";

describe("a daemon under systemd's readiness protocol", () => {
  test("sends READY=1 only once it serves, feeds the watchdog, and says STOPPING=1 on SIGTERM", async ({ tempDir }) => {
    const dir = tempDir();
    const socketPath = join(dir, "notify.sock");
    const socket = new DgramSocket();
    socket.bind(socketPath);
    const seen: Array<{ message: string; servingThen: boolean }> = [];
    const readyFile = join(dir, "cs.ready.json");
    socket.on("data", (buf: Buffer) => seen.push({ message: buf.toString("utf8"), servingThen: existsSync(readyFile) }));
    const config = join(dir, "cs.yaml");
    writeFileSync(
      config,
      JSON.stringify({
        name: "config-server",
        dataDir: join(dir, "cs"),
        passphrase: "readiness-passphrase",
        insecure: true,
        storage: { kind: "directory", directory: join(dir, "blobs") },
        readyFile,
        log: { level: "warn" },
      }),
    );
    const child = spawn(process.execPath, [CLI_MAIN, "config-server", "--config", config], {
      env: { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "400000" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const waitFor = (match: RegExp) =>
      vi.waitFor(
        () => {
          const found = seen.find((s) => match.test(s.message));
          if (!found) throw new Error(`no ${match} from the daemon (exit code ${child.exitCode}); stderr: ${stderr}`);
          return found;
        },
        { timeout: 60_000, interval: 50 },
      );
    try {
      const ready = await waitFor(/^READY=1$/m);
      // Ready means serving: the ready file (written after gRPC and /metrics are up) was there first.
      expect(ready.servingThen).toBe(true);
      expect(ready.message).toMatch(new RegExp(`^MAINPID=${child.pid}$`, "m"));
      const { metricsUrl } = JSON.parse(readFileSync(readyFile, "utf8")) as { metricsUrl: string };
      expect((await fetch(metricsUrl.replace(/\/metrics$/, "/healthz"))).status).toBe(200);
      // WATCHDOG_USEC 400 ms: pings every 200 ms while the daemon runs.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(seen.filter((s) => s.message === "WATCHDOG=1").length).toBeGreaterThanOrEqual(3);
      child.kill("SIGTERM");
      await waitFor(/^STOPPING=1$/m);
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      socket.close();
    }
  });
});
