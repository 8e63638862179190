import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { request } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { PollTimeoutError, pollUntil } from "../async/index.js";
import { type Logger, silentLogger } from "../logger.js";
import { AZURITE_ACCOUNT_NAME, azuriteConnectionString } from "./connection-string.js";

export interface AzuriteOptions {
  /** Workspace folder (metadata DB + extents); created if missing. */
  dataDir: string;
  /** 0 (default) lets the OS pick a free port. */
  blobPort?: number;
  logger?: Logger;
  /** How long to wait for it to accept requests (default 30 s). */
  startTimeoutMs?: number;
}

export interface AzuriteHandle {
  port: number;
  connectionString: string;
  pid: number;
  /** SIGTERM (Azurite flushes its DB), SIGKILL after 10 s. Safe to call twice. */
  stop(): Promise<void>;
}

/** Path of the blob-only Azurite entry point in the installed package. */
export function azuriteBlobMainPath(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve("azurite/package.json");
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { bin?: Record<string, string> };
  return join(dirname(pkgPath), pkg.bin?.["azurite-blob"] ?? "dist/src/blob/main.js");
}

/** Starts Azurite's blob service as a child process and resolves once it answers HTTP. */
export async function startAzurite(options: AzuriteOptions): Promise<AzuriteHandle> {
  const logger = options.logger ?? silentLogger();
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  await mkdir(options.dataDir, { recursive: true });
  const args = [
    azuriteBlobMainPath(),
    "--skipApiVersionCheck", // the SDK is newer than what Azurite 3.35 advertises
    "--loose",
    "--disableTelemetry", // Azurite phones home to Application Insights by default
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    String(options.blobPort ?? 0),
    "--location",
    options.dataDir,
    "--silent",
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) {
    await new Promise((resolve) => child.once("error", resolve));
    throw new Error("azurite: could not spawn node");
  }
  const pid = child.pid;
  // Don't leave an orphaned Azurite behind if our process exits without calling stop().
  const killOnExit = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  let stderrTail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    stderrTail = (stderrTail + text).slice(-2000);
    for (const line of text.split("\n")) if (line.trim()) logger.warn("azurite stderr", { line });
  });

  try {
    const port = await waitForListen(child, timeoutMs, () => stderrTail, logger);
    await waitForHttp(port, timeoutMs);
    logger.info("azurite started", { pid, port, dataDir: options.dataDir });
    let stopping: Promise<void> | undefined;
    return {
      port,
      pid,
      connectionString: azuriteConnectionString(port),
      stop: () => {
        stopping ??= stopChild(child).then(() => {
          process.removeListener("exit", killOnExit);
          logger.info("azurite stopped", { pid });
        });
        return stopping;
      },
    };
  } catch (err) {
    await stopChild(child);
    process.removeListener("exit", killOnExit);
    throw err;
  }
}

/** Azurite prints the bound address (the real port when asked for 0) once it listens. */
function waitForListen(child: ChildProcess, timeoutMs: number, stderr: () => string, logger: Logger): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => finish(new Error(`azurite did not start within ${timeoutMs} ms: ${stderr()}`)), timeoutMs);
    const onData = (text: string): void => {
      buffered += text;
      const match = /successfully listens on https?:\/\/[^\s:]+:(\d+)/.exec(buffered);
      if (match) finish(undefined, Number(match[1]));
    };
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`azurite exited during start (code ${code}, signal ${signal}): ${stderr().trim()}`));
    const finish = (err?: Error, port?: number): void => {
      clearTimeout(timer);
      child.stdout?.removeListener("data", onData);
      child.removeListener("exit", onExit);
      // Keep draining stdout so a chatty child never blocks on a full pipe.
      child.stdout?.on("data", (text: string) => logger.debug("azurite stdout", { text: text.trim() }));
      if (err) reject(err);
      else resolve(port!);
    };
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

/** Any HTTP answer (even 4xx for the unsigned probe) proves it serves requests. */
async function waitForHttp(port: number, timeoutMs: number): Promise<void> {
  const answers = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const req = request({ host: "127.0.0.1", port, path: `/${AZURITE_ACCOUNT_NAME}?comp=list`, method: "GET", timeout: 2000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on("error", () => resolve(false));
      req.on("timeout", () => req.destroy());
      req.end();
    });
  try {
    await pollUntil(`azurite on port ${port}`, answers, { timeoutMs });
  } catch (err) {
    if (err instanceof PollTimeoutError) throw new Error(`azurite on port ${port} does not answer HTTP`);
    throw err;
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
