import { createRequire } from "node:module";

/**
 * systemd's readiness protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams sent to the
 * unix socket named by $NOTIFY_SOCKET. Node's own sockets cannot send unix datagrams, so the send
 * goes through `node-unix-socket` (prebuilt N-API binary, no compiler or libsystemd needed). Outside
 * systemd ($NOTIFY_SOCKET unset) every call is a no-op, so daemons call it unconditionally.
 */
export interface SdNotifier {
  /** Whether a service manager is listening. */
  readonly enabled: boolean;
  /** Sends one state message, e.g. "READY=1\nSTATUS=serving". Resolves once sent (or at once when disabled). */
  notify(state: string): Promise<void>;
  /**
   * Pings WATCHDOG=1 at half the unit's WatchdogSec (from $WATCHDOG_USEC) while the event loop
   * turns, so a wedged daemon is restarted. Returns the stop function; no-op without a watchdog.
   */
  startWatchdog(): () => void;
  close(): void;
}

interface DgramSocketLike {
  sendTo(buf: Buffer, offset: number, length: number, destPath: string, onWrite?: (err: Error | undefined) => void): void;
  close(): void;
}

/** `@name` is the abstract namespace (a leading NUL byte), as systemd and sd_notify(3) spell it. */
export function notifySocketPath(value: string): string {
  return value.startsWith("@") ? `\0${value.slice(1)}` : value;
}

/** The watchdog interval the manager asked for, in milliseconds, or undefined when there is none for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  // WATCHDOG_PID names the process that must ping; another process (a child) must not.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 1000;
}

export function createSdNotifier(env: NodeJS.ProcessEnv = process.env): SdNotifier {
  const target = env.NOTIFY_SOCKET;
  if (!target) {
    return { enabled: false, notify: async () => undefined, startWatchdog: () => () => undefined, close: () => undefined };
  }
  const path = notifySocketPath(target);
  // Loaded only under systemd, so a platform without the prebuilt binary still runs daemons by hand.
  const { DgramSocket } = createRequire(import.meta.url)("node-unix-socket") as { DgramSocket: new () => DgramSocketLike };
  const socket = new DgramSocket();
  let closed = false;
  const notify = (state: string) =>
    new Promise<void>((resolve, reject) => {
      if (closed) return resolve();
      const buf = Buffer.from(state, "utf8");
      socket.sendTo(buf, 0, buf.length, path, (err) => (err ? reject(err) : resolve()));
    });
  return {
    enabled: true,
    notify,
    startWatchdog() {
      const interval = watchdogIntervalMs(env);
      if (interval === undefined) return () => undefined;
      const timer = setInterval(() => void notify("WATCHDOG=1").catch(() => undefined), Math.max(1, Math.floor(interval / 2)));
      timer.unref();
      return () => clearInterval(timer);
    },
    close() {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}
