/**
 * The supervisor of one lab daemon: `node keeper.js STATE LOG READY -- ARGS…` runs `node ARGS…`
 * as its child and restarts it with backoff whenever it exits without being asked to; the state
 * file tells `srlab status` the child's pid, restart count and last exit reason. SIGTERM/SIGINT
 * stop the child cleanly, then the keeper. Only Node built-ins: one keeper per daemon stays small.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, renameSync, writeFileSync, writeSync } from "node:fs";
import type { KeeperState } from "./keeper-state.js";
import { RestartBackoff } from "./restart-backoff.js";

/** Without a ready file, a first run that lived this long counts as started. */
const STARTED_WITHOUT_READY_MS = 3_000;
/** Preloaded into the daemon: it dies with this keeper. */
const DIE_WITH_KEEPER = new URL("./die-with-keeper.js", import.meta.url).href;

function main(): void {
  const [stateFile, logFile, readyFile, sep, ...args] = process.argv.slice(2);
  if (!stateFile || !logFile || readyFile === undefined || sep !== "--" || args.length === 0) {
    process.stderr.write("usage: keeper STATE_FILE LOG_FILE READY_FILE|- -- ARGS...\n");
    process.exit(2);
  }
  const state: KeeperState = { keeperPid: process.pid, pid: 0, state: "starting", restarts: 0, lastExit: null, lastExitAt: null, startedAt: null };
  let stopping = false;
  let everStarted = false;
  const backoff = new RestartBackoff();
  let child: ReturnType<typeof spawn> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;

  const save = () => {
    const tmp = `${stateFile}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(state)}\n`);
    renameSync(tmp, stateFile);
  };
  const log = (line: string) => {
    const fd = openSync(logFile, "a");
    try {
      writeSync(fd, `${new Date().toISOString()} [supervisor] ${line}\n`);
    } finally {
      closeSync(fd);
    }
  };

  const start = () => {
    restartTimer = undefined;
    if (stopping) return finish(0);
    const fd = openSync(logFile, "a");
    const startedAt = Date.now();
    try {
      child = spawn(process.execPath, ["--import", DIE_WITH_KEEPER, ...args], { stdio: ["ignore", fd, fd, "ipc"] });
    } finally {
      closeSync(fd);
    }
    state.pid = child.pid ?? 0;
    state.state = "running";
    state.startedAt = new Date(startedAt).toISOString();
    save();
    const readyCheck = setInterval(() => {
      if ((readyFile !== "-" && existsSync(readyFile)) || (readyFile === "-" && Date.now() - startedAt >= STARTED_WITHOUT_READY_MS)) {
        everStarted = true;
        clearInterval(readyCheck);
      }
    }, 200);
    child.on("error", (err) => log(`could not start: ${err.message}`));
    child.on("exit", (code, signal) => {
      clearInterval(readyCheck);
      child = undefined;
      state.pid = 0;
      const reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (stopping) {
        state.state = "stopped";
        save();
        return finish(0);
      }
      state.lastExit = reason;
      state.lastExitAt = new Date().toISOString();
      // A daemon that never came up the first time is a configuration problem: report, do not loop.
      if (!everStarted && state.restarts === 0) {
        state.state = "failed";
        save();
        log(`${reason} before it was ready; not restarting`);
        return finish(typeof code === "number" && code !== 0 ? code : 1);
      }
      const delayMs = backoff.next(startedAt);
      state.restarts++;
      state.state = "backoff";
      save();
      log(`daemon ${reason} unexpectedly; restart ${state.restarts} in ${delayMs / 1000} s`);
      restartTimer = setTimeout(start, delayMs);
    });
  };

  const finish = (code: number) => {
    process.exit(code);
  };

  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (restartTimer) {
      clearTimeout(restartTimer);
      state.state = "stopped";
      save();
      finish(0);
    } else if (child?.pid) {
      state.state = "stopping";
      save();
      child.kill("SIGTERM");
    } else {
      state.state = "stopped";
      save();
      finish(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", () => undefined);
  start();
}

main();
