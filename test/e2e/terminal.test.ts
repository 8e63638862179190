import { spawn } from "node:child_process";
import { spawn as spawnPty } from "@lydell/node-pty";
import { describe, expect } from "vitest";
import { CLI_MAIN, srlab, srlabJson, srlabOk } from "../support/cli.js";
import { test } from "../support/lab.js";

// The terminal views against a real lab: status --watch on a pseudo-terminal and on a pipe,
// jobs --follow, and logs of a running component.

let dir: string;

test.beforeAll(async ({ startLab }) => {
  ({ dir } = await startLab({ name: "term", up: ["--disk-size", "16MiB", "--time-unit", "1s"] }));
});

const count = (text: string, word: string) => text.split(word).length - 1;

describe("srlab status --watch", () => {
  test("on a terminal the table is redrawn in place until Ctrl-C", async () => {
    const pty = spawnPty(process.execPath, [CLI_MAIN, "status", "--watch", "--interval", "300ms", "--dir", dir], {
      cols: 200,
      rows: 50,
      env: process.env as Record<string, string>,
    });
    let out = "";
    pty.onData((d) => {
      out += d;
    });
    const exited = new Promise<number>((resolve) => pty.onExit(({ exitCode }) => resolve(exitCode)));
    // Frames after the first move the cursor back up over the previous one instead of scrolling.
    await expect.poll(() => /\x1b\[\d+F/.test(out), { timeout: 60_000 }).toBe(true);
    expect(count(out, "machine-1")).toBeGreaterThanOrEqual(2);
    expect(out).toContain("config-server");
    pty.write("\x03");
    expect(await exited).toBe(0);
  });

  test("on a pipe each frame is printed plainly, one after the other", async () => {
    const child = spawn(process.execPath, [CLI_MAIN, "status", "--watch", "--interval", "300ms", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await expect.poll(() => count(out, "MACHINE "), { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    expect(out).not.toContain("\x1b[");
    child.kill("SIGINT");
    expect(await exited).toBe(0);
  });

  test("a bad interval is refused with one line", async () => {
    const r = await srlab(["status", "--watch", "--interval", "0s", "--dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('srlab: --interval must be longer than 0, got "0s"');
  });
});

describe("jobs and logs", () => {
  test("jobs --follow draws a protection job's steps until it succeeds", async () => {
    const job = await srlabJson<{ jobId: string }>(["protect", "machine-1", "--dir", dir]);
    const r = await srlabOk(["jobs", "--follow", job.jobId, "--dir", dir]);
    expect(r.stdout).toContain("succeeded");
    expect(r.stdout).toContain("STEP");
    const done = await srlabJson<{ state: string; steps: Array<{ state: string }> }>(["jobs", "--job", job.jobId, "--dir", dir]);
    expect(done.state).toBe("succeeded");
    expect(done.steps.every((s) => s.state === "succeeded" || s.state === "skipped")).toBe(true);
  });

  test("logs prints a running daemon's structured lines, filtered by machine", async () => {
    const all = await srlabOk(["logs", "config-server", "--dir", dir]);
    expect(all.stdout).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO +\[config-server\]/);
    const status = await srlabJson<{ machines: Array<{ name: string; machineId: string }> }>(["status", "--dir", dir]);
    const names = ["machine-1", status.machines.find((m) => m.name === "machine-1")!.machineId];
    const json = await srlabOk(["logs", "process-server-1", "--dir", dir, "--machine", "machine-1", "--json"]);
    const lines = json.stdout.split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    // Every line printed is about machine-1, by name or by id.
    for (const line of lines) expect(Object.values(JSON.parse(line) as Record<string, unknown>).some((v) => names.includes(v as string))).toBe(true);
  });
});
