import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test as base } from "vitest";
import { type CliResult, srlab, srlabJson, srlabOk } from "./cli.js";

export interface LabOptions {
  /** Prefix of the lab's temp directory, so a leftover one says whose it is. */
  name: string;
  /** Flags of `srlab up --detach` after `--dir`, e.g. ["--machines", "2", "--time-unit", "1s"]. */
  up?: string[];
  /** Time limit of `srlab up`. */
  upTimeoutMs?: number;
  /** Variables added to the environment of `srlab up` (and so of the daemons it starts). */
  env?: NodeJS.ProcessEnv;
}

/** A lab started with `srlab up --detach` in a temp directory of its own. */
export interface Lab {
  readonly dir: string;
  /** A second temp directory for the test's own files (images, plans, reports). */
  readonly work: string;
  /** What `srlab up` printed. */
  readonly up: CliResult;
  /** `srlab <args> --dir <lab>`. */
  run(args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** As run(), failing with stderr when the command failed. */
  ok(args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** As ok() with --json, parsed. */
  json<T>(args: string[], timeoutMs?: number): Promise<T>;
}

export type StartLab = (options: LabOptions) => Promise<Lab>;

export interface LabFixtures {
  /**
   * Starts a lab; every lab started in the file is stopped with `srlab down` when the file's tests
   * end, pass or fail, then any daemon still running from its directory is killed and both
   * directories are removed.
   */
  startLab: StartLab;
}

/** `test` with the lab fixture (file-scoped: a lab serves every test of its file). */
export const test = base.extend<LabFixtures>({
  startLab: [
    // biome-ignore lint/correctness/noEmptyPattern: vitest reads the fixture's dependencies from this pattern
    async ({}, use) => {
      const labs: Lab[] = [];
      try {
        await use(async (options) => {
          const dir = mkdtempSync(join(tmpdir(), `srlab-${options.name}-`));
          const work = mkdtempSync(join(tmpdir(), `srlab-${options.name}-work-`));
          const withDir = (args: string[]) => [...args, "--dir", dir];
          const partial = {
            dir,
            work,
            run: (args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv) => srlab(withDir(args), timeoutMs, env),
            ok: (args: string[], timeoutMs?: number, env?: NodeJS.ProcessEnv) => srlabOk(withDir(args), timeoutMs, env),
            json: <T>(args: string[], timeoutMs?: number) => srlabJson<T>(withDir(args), timeoutMs),
          };
          labs.push({ ...partial, up: { code: -1, stdout: "", stderr: "" } });
          const up = await srlabOk(["up", "--detach", "--dir", dir, ...(options.up ?? [])], options.upTimeoutMs, options.env);
          const lab: Lab = { ...partial, up };
          labs[labs.length - 1] = lab;
          return lab;
        });
      } finally {
        for (const lab of labs) await stopLab(lab);
      }
    },
    { scope: "file" },
  ],
});

/** `srlab down`, then whatever still runs from the lab's directory (a daemon the manifest lost) is killed. */
export async function stopLab(lab: Pick<Lab, "dir" | "work">): Promise<void> {
  await srlab(["down", "--dir", lab.dir]).catch(() => undefined);
  killLeftovers(lab.dir);
  rmSync(lab.dir, { recursive: true, force: true });
  rmSync(lab.work, { recursive: true, force: true });
}

/**
 * Kills every process whose command line names the directory (keepers, daemons, Azurite), with
 * their process groups; returns the names of what it found, for a test to assert none are left.
 */
export function killLeftovers(dir: string): string[] {
  const found: string[] = [];
  for (const { pid, args } of processesIn(dir)) {
    found.push(args);
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // gone already, or not a group leader
      }
    }
  }
  return found;
}

/** Processes other than this one whose command line mentions `dir`. */
export function processesIn(dir: string): Array<{ pid: number; args: string }> {
  const out: Array<{ pid: number; args: string }> = [];
  const prefix = `${dir}/`;
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue;
    }
    if (args.includes(prefix) || args.endsWith(dir) || args.includes(`${dir} `)) out.push({ pid, args });
  }
  return out;
}
