import { execFile, spawn } from "node:child_process";
import { distPath } from "./dist.js";

export { waitUntil } from "./wait.js";

export const CLI_MAIN = distPath("cli/main.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the srlab CLI as a user would, returning its exit code and output (`env` adds variables). */
export function srlab(args: string[], timeoutMs = 180_000, env?: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    const options = { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: env ? { ...process.env, ...env } : undefined };
    execFile(process.execPath, [CLI_MAIN, ...args], options, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs srlab and parses --json output, failing loudly with stderr when the command failed. */
export async function srlabJson<T>(args: string[], timeoutMs?: number): Promise<T> {
  const r = await srlab([...args, "--json"], timeoutMs);
  if (r.code !== 0) throw new Error(`srlab ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function srlabOk(args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const r = await srlab(args, timeoutMs, env);
  if (r.code !== 0) throw new Error(`srlab ${args.join(" ")} failed (${r.code}): ${r.stderr}\n${r.stdout}`);
  return r;
}

/** srlab in the background with no time limit, for a long run the test acts on while it goes. */
export function srlabAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
