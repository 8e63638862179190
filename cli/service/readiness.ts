import { createSdNotifier } from "./sd-notify.js";

/**
 * Tells systemd (Type=notify) that a daemon is serving, keeps its watchdog fed and says when it
 * stops. Called once the daemon's start() resolved; does nothing outside systemd.
 */
export async function announceReady(role: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const notifier = createSdNotifier(env);
  if (!notifier.enabled) return;
  try {
    await notifier.notify(`READY=1\nSTATUS=${role} serving\nMAINPID=${process.pid}`);
  } catch (err) {
    // The daemon works without the manager's bookkeeping; systemd will report the start timeout.
    process.stderr.write(`srlab: could not notify systemd of readiness: ${(err as Error).message}\n`);
    notifier.close();
    return;
  }
  const stopWatchdog = notifier.startWatchdog();
  const stopping = () => {
    stopWatchdog();
    void notifier.notify(`STOPPING=1\nSTATUS=${role} stopping`).catch(() => undefined);
  };
  process.once("SIGTERM", stopping);
  process.once("SIGINT", stopping);
}
