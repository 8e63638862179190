import { execFile, execFileSync, spawnSync } from "node:child_process";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn as spawnPty } from "@lydell/node-pty";
import { afterAll, describe, expect, test } from "vitest";
import { logs, matches, prettyLine } from "../cli/commands/logs.js";
import { rpoCell } from "../cli/commands/status.js";
import { formatTable } from "../cli/output.js";
import { palette, truncateVisible, visibleLength } from "../cli/terminal/index.js";
import { REPO_ROOT, sourceUrl } from "./support/dist.js";

const CLI_SOURCE = join(REPO_ROOT, "cli/main.ts");
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The CLI from its sources, as a user runs it (exit code, stdout, stderr). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", CLI_SOURCE, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const hasShell = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;

describe("terminal text", () => {
  test("widths ignore colour codes, and truncation keeps codes whole", () => {
    const c = palette(true);
    expect(visibleLength(c.red("abc"))).toBe(3);
    const cut = truncateVisible(`${c.green("hello")} world`, 7);
    expect(visibleLength(cut)).toBe(7);
    expect(cut.replace(/\x1b\[[0-9;]*m/g, "")).toBe("hello w");
    const lines = formatTable(["A", "B"], [[c.red("x"), "1"], ["long", "2"]]);
    expect(lines.map(visibleLength)).toEqual([7, 7, 7]);
    expect(lines[1]!.replace(/\x1b\[[0-9;]*m/g, "")).toBe("x     1");
  });

  test("RPO is green below half the threshold, yellow up to it, red beyond", () => {
    const c = palette(true);
    expect(rpoCell(10, 60, c)).toBe(c.green("10.0 s"));
    expect(rpoCell(45, 60, c)).toBe(c.yellow("45.0 s"));
    expect(rpoCell(61, 60, c)).toBe(c.red("61.0 s"));
    expect(rpoCell(61, undefined, c)).toBe("61.0 s");
    expect(rpoCell(61, 60, palette(false))).toBe("61.0 s");
  });
});

describe("live view", () => {
  const script = (frames: number) => `
    import { LiveView } from ${JSON.stringify(sourceUrl("cli/terminal/index.ts"))};
    const view = new LiveView();
    for (let i = 1; i <= ${frames}; i++) view.draw(["frame " + i, "line two of " + i]);
    view.close();
  `;

  test("on a terminal each frame overwrites the last in place", async () => {
    const pty = spawnPty(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(3)], { cols: 80, rows: 24, cwd: REPO_ROOT, env: process.env as Record<string, string> });
    let out = "";
    pty.onData((d) => {
      out += d;
    });
    const code = await new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
    expect(code).toBe(0);
    // Back up two lines before frames 2 and 3, never scrolling a second copy onto the screen.
    expect(out.match(/\x1b\[2F/g)?.length).toBe(2);
    expect(out).toContain("frame 3");
    expect(out).toContain("\x1b[?25h");
  });

  test("on a pipe frames repeat as plain text", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script(2)], { cwd: REPO_ROOT, encoding: "utf8" });
    expect(out).toBe("frame 1\nline two of 1\n\nframe 2\nline two of 2\n\n");
  });
});

describe("srlab logs", () => {
  const record = (level: string, message: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ level, message, component: "process-server-1", timestamp: "2026-01-02T03:04:05.678Z", ...extra });

  test("pretty lines carry time, level, component, message and fields; filters by level and machine", () => {
    const c = palette(false);
    const line = { raw: "", record: JSON.parse(record("warn", "cache filling", { machineId: "m-1" })) };
    expect(prettyLine(line, c)).toBe("03:04:05.678 WARN  [process-server-1] cache filling machineId=m-1");
    expect(matches(line, { level: "warn" })).toBe(true);
    expect(matches(line, { level: "error" })).toBe(false);
    expect(matches(line, { machine: ["m-1"] })).toBe(true);
    expect(matches(line, { machine: ["m-2"] })).toBe(false);
    expect(matches({ raw: "Error: boom" }, { level: "error" })).toBe(true);
    expect(matches({ raw: "Error: boom" }, { machine: ["m-1"] })).toBe(false);
  });

  async function labWithLog(lines: string[]): Promise<{ dir: string; log: string }> {
    const dir = await mkdtemp(join(tmpdir(), "srlab-logs-"));
    dirs.push(dir);
    const log = join(dir, "logs", "process-server-1.log");
    await mkdir(join(dir, "logs"), { recursive: true });
    await writeFile(log, `${lines.join("\n")}\n`);
    const component = { name: "process-server-1", role: "process-server", logFile: log, readyFile: "", pid: 0 };
    await writeFile(
      join(dir, "lab.json"),
      JSON.stringify({ version: 1, passphrase: "", timeUnitSeconds: 1, storage: { kind: "directory" }, configServerAddress: "127.0.0.1:1", caFile: "", components: [component] }),
    );
    return { dir, log };
  }

  /** Runs `srlab logs` in-process and returns what it printed. */
  async function logsOf(dir: string, options: Parameters<typeof logs>[2], signal?: AbortSignal, sink?: (text: string) => void): Promise<string> {
    let text = "";
    const out = new Writable({
      write(chunk, _encoding, done) {
        text += chunk.toString();
        sink?.(text);
        done();
      },
    });
    await logs(dir, "process-server-1", options, out, signal);
    return text;
  }

  test("prints, filters and tails a component's log; unknown components and levels are refused", async () => {
    const { dir } = await labWithLog([record("info", "started"), record("warn", "slow upload", { machineId: "m-1" }), record("debug", "detail"), "plain crash line"]);
    expect((await logsOf(dir, {})).split("\n").filter(Boolean)).toHaveLength(4);
    const warn = await logsOf(dir, { level: "warn" });
    expect(warn).toContain("slow upload");
    expect(warn).not.toContain("started");
    expect((await logsOf(dir, { machine: "m-1", json: true })).trim()).toBe(record("warn", "slow upload", { machineId: "m-1" }));
    expect((await logsOf(dir, { tail: 1 })).trim()).toBe("plain crash line");
    await expect(logs(dir, "nope", {})).rejects.toThrow(`no component "nope" in the lab in ${dir} (components: process-server-1)`);
    await expect(logsOf(dir, { level: "loud" })).rejects.toThrow("--level loud: not a log level");
  });

  test("--follow prints lines appended after it started, until stopped", async () => {
    const { dir, log } = await labWithLog([record("info", "before")]);
    const stop = new AbortController();
    let seen = "";
    const following = logsOf(dir, { follow: true }, stop.signal, (t) => {
      seen = t;
    });
    await expect.poll(() => seen).toContain("before");
    await appendFile(log, `${record("info", "after")}\n`);
    await expect.poll(() => seen).toContain("after");
    stop.abort();
    expect(await following).toContain("after");
  });
});

describe("shell completion", () => {
  test("bash completes verbs, nested verbs, flags and flag choices from the CLI's own tree", async (ctx) => {
    if (!hasShell("bash")) return ctx.skip("bash not installed");
    const { stdout: script, code } = await cli(["completion", "bash"]);
    expect(code).toBe(0);
    const complete = (words: string[]) =>
      execFileSync("bash", ["-c", `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _srlab; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean);
    expect(complete(["srlab", "sta"])).toEqual(["status"]);
    expect(complete(["srlab", "network", ""])).toEqual(["create", "list", "map"]);
    expect(complete(["srlab", "status", "--w"])).toEqual(["--watch"]);
    expect(complete(["srlab", "workload", "machine-1", "--profile", "z"])).toEqual(["zipf"]);
  });

  test("zsh completes the same tree", async (ctx) => {
    if (!hasShell("zsh")) return ctx.skip("zsh not installed (apt-get install zsh)");
    const { stdout: script } = await cli(["completion", "zsh"]);
    const complete = (words: string[]) =>
      execFileSync(
        "zsh",
        ["-c", `compadd() { shift; print -l -- "$@" | grep -- "^\${words[CURRENT]}" }\n_files() { print FILES }\n${script}\nwords=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length}; _srlab`],
        { encoding: "utf8" },
      )
        .split("\n")
        .filter(Boolean);
    expect(complete(["srlab", "net"])).toEqual(["network"]);
    expect(complete(["srlab", "export", "m", "--to", ""])).toEqual(["FILES"]);
    expect(complete(["srlab", "up", "--storage", "d"])).toEqual(["directory"]);
  });

  test("an unknown shell gets one clear line", async () => {
    const r = await cli(["completion", "fish"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('srlab: completion for "fish" is not available (bash or zsh)');
  });
});
