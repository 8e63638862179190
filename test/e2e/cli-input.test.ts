import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { srlab } from "../support/cli.js";

const root = mkdtempSync(join(tmpdir(), "srlab-input-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** One line on stderr that says what is wrong, a non-zero exit, no stack trace. */
async function refused(args: string[], pattern: RegExp): Promise<void> {
  const r = await srlab(args);
  expect(r.code, `srlab ${args.join(" ")} succeeded`).not.toBe(0);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\bat .+:\d+:\d+|EEXIST|ENOTDIR/);
}

describe("srlab up refuses bad values before it starts anything", () => {
  const cases: Array<[string[], RegExp]> = [
    [["--disk-size", "0"], /--disk-size must be larger than 0/],
    [["--disks", "0"], /--disks must be a whole number/],
    [["--machines", "abc"], /--machines must be a whole number.*"abc"/],
    [["--machines", "-1"], /--machines must be a whole number.*"-1"/],
    [["--machines", "1.5"], /--machines must be a whole number/],
    [["--process-servers", "0"], /--process-servers must be a whole number/],
    [["--disk-size", "1000"], /--disk-size must be a multiple of 512 bytes/],
    [["--disk-size", "lots"], /--disk-size: invalid size "lots"/],
    [["--time-unit", "0s"], /--time-unit must be longer than 0/],
  ];
  test.each(cases)("up %j", async (flags, pattern) => {
    const dir = join(root, `lab-${flags.join("")}`);
    await refused(["up", "--detach", "--dir", dir, ...flags], pattern);
    // Nothing was created, so nothing can have been started.
    expect(existsSync(dir), `${dir} was created`).toBe(false);
  });

  test("up on a path that is a file says so", async () => {
    const file = join(root, "a-file");
    writeFileSync(file, "not a lab\n");
    await refused(["up", "--detach", "--dir", file], /a-file is a file, not a directory/);
    await refused(["up", "--detach", "--dir", join(file, "lab")], /a-file is a file, not a directory/);
  });
});

describe("workload and export refuse bad numbers before contacting the lab", () => {
  // A directory with no lab: the value check must come first, or the error would be "no lab".
  const dir = join(root, "no-lab");
  test.each([
    [["workload", "machine-1", "--iops", "-5"], /--iops must be a whole number of at least 1, got "-5"/],
    [["workload", "machine-1", "--iops", "x"], /--iops must be a whole number/],
    [["workload", "machine-1", "--duration", "0s"], /--duration must be longer than 0/],
    [["workload", "machine-1", "--rate", "fast"], /--rate: invalid rate "fast"/],
    [["workload", "machine-1", "--disk", "-1"], /--disk must be a whole number/],
    [["export", "machine-1", "--to", "x.img", "--disk", "one"], /--disk must be a whole number/],
  ])("%j", async (args, pattern) => {
    await refused([...args, "--dir", dir], pattern);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });
});
