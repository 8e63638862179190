import { exec } from "node:child_process";

export interface HookResult {
  stdout: string;
  stderr: string;
}

/** Runs an application hook (freeze/thaw) through the shell; rejects with its output on failure. */
export function runHook(name: string, command: string, timeoutMs: number, env: Record<string, string> = {}): Promise<HookResult> {
  return new Promise((resolve, reject) => {
    exec(command, { timeout: timeoutMs, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      const detail = stderr.trim() || stdout.trim() || err.message;
      reject(new Error(`${name} hook failed (${err.killed ? "timed out" : `exit ${err.code ?? "?"}`}): ${detail}`));
    });
  });
}
