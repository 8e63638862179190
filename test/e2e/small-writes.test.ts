import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { isAlive, LabLayout } from "../../cli/lab/index.js";
import { srlabJson, srlabOk, waitUntil } from "../support/cli.js";
import { hasTool, sha256File } from "../support/images.js";
import { test } from "../support/lab.js";

interface MachineStatus {
  name: string;
  rpoSeconds: number;
  pendingBytes: number;
  capturedSequence: number;
  receivedSequence: number;
  uploadedSequence: number;
  processedSequence: number;
  processedLagSeconds: number;
  unprocessedBytes: number;
  disks: Array<{ path: string; nbd: string; nbdUnix: string }>;
}

let dir: string;
let work: string;
const PS = "process-server-1";

async function machine(): Promise<MachineStatus> {
  return (await srlabJson<{ machines: MachineStatus[] }>(["status", "--dir", dir])).machines.find((m) => m.name === "machine-1")!;
}

/** The process server's apply requests by kind, from its /metrics. */
async function applyRequests(): Promise<Record<string, number>> {
  const ready = JSON.parse(readFileSync(join(dir, "run", `${PS}.ready.json`), "utf8")) as { metricsUrl: string };
  const text = await (await fetch(ready.metricsUrl)).text();
  const out: Record<string, number> = { read: 0, write: 0, clear: 0 };
  for (const m of text.matchAll(/^srlab_ps_apply_requests_total\{[^}]*kind="(\w+)"[^}]*\} (\d+)/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

/** Overlapping random writes of 4–64 KiB, many in flight, through the NBD export. */
function fio(uri: string, seed: number): void {
  execFileSync("fio", [
    "--name=overlap",
    "--ioengine=nbd",
    `--uri=${uri}`,
    "--rw=randwrite",
    "--bsrange=4k-64k",
    "--norandommap",
    `--randseed=${seed}`,
    "--size=32m",
    "--io_size=24m",
    "--iodepth=16",
  ]);
}

/** The README's promise: after RPO 0, `srlab export` without a point is the source, byte for byte. */
async function exportAtRpo0(): Promise<{ sequence: number }> {
  // One report interval, so the status reflects the last writes.
  await new Promise((r) => setTimeout(r, 1_500));
  const m = await waitUntil(
    "RPO 0",
    async () => {
      const s = await machine();
      return s.rpoSeconds === 0 && s.pendingBytes === 0 && s.receivedSequence === s.capturedSequence ? s : undefined;
    },
    180_000,
  );
  const out = join(work, `export-${Date.now()}.img`);
  const exported = await srlabJson<{ sha256: string; sequence: number }>(["export", "machine-1", "--to", out, "--dir", dir], 300_000);
  rmSync(out, { force: true });
  assert.equal(exported.sha256, await sha256File(m.disks[0]!.path), "the export equals the source image");
  assert.ok(exported.sequence >= m.capturedSequence, `exported sequence ${exported.sequence} covers captured ${m.capturedSequence}`);
  return exported;
}

test.beforeAll(async ({ startLab }) => {
  ({ dir, work } = await startLab({ name: "small", up: ["--machines", "1", "--disk-size", "64MiB", "--time-unit", "1s"] }));
  await srlabOk(["protect", "machine-1", "--wait", "--dir", dir], 300_000);
});

describe("small random writes", () => {
  test("status shows the processed lag and the unprocessed bytes", async () => {
    const m = await machine();
    assert.equal(typeof m.processedLagSeconds, "number");
    assert.equal(typeof m.unprocessedBytes, "number");
  });

  test("overlapping 4–64 KiB fio writes: block-wise apply keeps the replica byte-exact", async ({ skip }) => {
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const before = await applyRequests();
    fio((await machine()).disks[0]!.nbdUnix, 11);
    await exportAtRpo0();
    const after = await applyRequests();
    // fio's writes are 4 KiB aligned: only whole blocks that the batch did not cover are ever read.
    assert.ok(after.read! > before.read!, `block-wise apply read blocks (requests ${JSON.stringify(after)})`);
    const m = await machine();
    assert.equal(m.processedLagSeconds, 0);
    assert.equal(m.unprocessedBytes, 0);
  });

  test("the same with block-wise apply off: one call per run, still byte-exact", async ({ skip }) => {
    if (!hasTool("fio")) return skip("fio not installed (apt-get install fio)");
    const layout = new LabLayout(dir);
    const ps = layout.read().components.find((c) => c.name === PS)!;
    execFileSync("kill", ["-TERM", String(ps.pid)]);
    await waitUntil("the process server to stop", async () => !isAlive(ps.pid), 30_000);
    const config = (parseYaml(readFileSync(ps.configFile!, "utf8")) ?? {}) as Record<string, unknown>;
    writeFileSync(ps.configFile!, stringifyYaml({ ...config, apply: { blockWise: false } }));
    await srlabOk(["up", "--detach", "--dir", dir]);
    const before = await applyRequests();
    fio((await machine()).disks[0]!.nbdUnix, 12);
    await exportAtRpo0();
    const after = await applyRequests();
    assert.equal(after.read, before.read, "aligned writes applied run by run need no reads");
    assert.ok(after.write! > before.write!);
  });
});
