import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DgramSocket } from "node-unix-socket";
import { afterAll, describe, expect, test } from "vitest";
import { createSdNotifier, notifySocketPath, watchdogIntervalMs } from "../cli/service/index.js";

const dir = mkdtempSync(join(tmpdir(), "srlab-notify-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for systemd's notification socket: collects every datagram. */
function manager(path: string) {
  const socket = new DgramSocket();
  socket.bind(notifySocketPath(path));
  const messages: string[] = [];
  socket.on("data", (buf: Buffer) => messages.push(buf.toString("utf8")));
  const next = async (match: RegExp, timeoutMs = 5_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find((m) => match.test(m));
      if (found) return found;
      if (Date.now() > until) throw new Error(`no ${match} among ${JSON.stringify(messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { messages, next, close: () => socket.close() };
}

describe("sd_notify", () => {
  test("sends state datagrams to $NOTIFY_SOCKET and feeds the watchdog at half its interval", async () => {
    const path = join(dir, "notify.sock");
    const m = manager(path);
    const notifier = createSdNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: "100000", WATCHDOG_PID: String(process.pid) });
    try {
      expect(notifier.enabled).toBe(true);
      await notifier.notify("READY=1\nSTATUS=serving");
      expect(await m.next(/READY=1/)).toBe("READY=1\nSTATUS=serving");
      const stop = notifier.startWatchdog();
      await m.next(/^WATCHDOG=1$/);
      const start = m.messages.filter((x) => x === "WATCHDOG=1").length;
      await new Promise((r) => setTimeout(r, 400));
      stop();
      // Every 50 ms over 400 ms: several pings, not one.
      expect(m.messages.filter((x) => x === "WATCHDOG=1").length - start).toBeGreaterThanOrEqual(3);
    } finally {
      notifier.close();
      m.close();
    }
  });

  test("reaches an abstract-namespace socket (@name)", async () => {
    const name = `@srlab-test-${process.pid}-${Date.now()}`;
    const m = manager(name);
    const notifier = createSdNotifier({ NOTIFY_SOCKET: name });
    try {
      await notifier.notify("READY=1");
      await m.next(/^READY=1$/);
    } finally {
      notifier.close();
      m.close();
    }
  });

  test("outside systemd it does nothing; a watchdog meant for another process is not fed", async () => {
    const off = createSdNotifier({});
    expect(off.enabled).toBe(false);
    await off.notify("READY=1");
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
  });

  test("a send to a socket nobody listens on is an error the caller sees", async () => {
    const notifier = createSdNotifier({ NOTIFY_SOCKET: join(dir, "nobody.sock") });
    await expect(notifier.notify("READY=1")).rejects.toThrow();
    notifier.close();
  });
});
