import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { promisify } from "node:util";
import { FileExport, NbdServer } from "../mobility-agent/nbd/index.js";

const run = promisify(execFile);
const MiB = 1024 * 1024;

function installed(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

function sha256(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** Real NBD clients (qemu, libnbd, fio) against our server; each skips visibly when its tool is missing. */
describe("NbdServer with stock NBD clients", () => {
  let dir: string;
  let server: NbdServer;
  const exports: FileExport[] = [];
  const make = (name: string, size: number) => {
    const e = new FileExport({ name, path: path.join(dir, `${name}.img`), createSize: size, description: `${name} test disk` });
    exports.push(e);
    server.addExport(e);
    return e;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "srlab-nbdc-"));
    server = new NbdServer({ exports: [], socketPath: path.join(dir, "nbd.sock") });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
    for (const e of exports) e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("qemu-io writes patterns, zeroes and discards; reads them back", async (t) => {
    if (!installed("qemu-io")) return t.skip("qemu-io not installed");
    const e = make("qemu", 16 * MiB);
    const cmds = [
      "write -P 0x5a 0 1M",
      "write -P 0xa5 -f 1M 512k", // FUA
      "write -P 0x33 2M 64k",
      "write -z 256k 64k", // NBD_CMD_FLAG_NO_HOLE
      "write -z -u 2M 64k", // may unmap: no NO_HOLE
      "discard 8M 1M",
      "aio_write -P 0x11 4M 64k",
      "aio_write -P 0x22 4M 4k",
      "aio_flush",
      "flush",
      "read -P 0x5a 0 256k",
      "read -P 0 256k 64k",
      "read -P 0xa5 1M 512k",
      "read -P 0x22 4M 4k",
      "read -P 0x11 4100k 60k",
      "read -P 0 2M 64k",
    ];
    const { stdout, stderr } = await run("qemu-io", ["-f", "raw", ...cmds.flatMap((c) => ["-c", c]), server.uri("qemu")]);
    assert.doesNotMatch(stdout + stderr, /fail|error/i, stdout + stderr);
    const img = fs.readFileSync(e.path);
    assert.ok(img.subarray(0, 256 * 1024).every((b) => b === 0x5a));
    assert.ok(img.subarray(256 * 1024, 320 * 1024).every((b) => b === 0));
    assert.ok(img.subarray(MiB, MiB + 512 * 1024).every((b) => b === 0xa5));
    // A deliberately wrong pattern must be reported, proving the checks above are real.
    // (qemu-io exits non-zero on a pattern mismatch, so the zero exit above was meaningful.)
    await assert.rejects(run("qemu-io", ["-f", "raw", "-c", "read -P 0x77 0 4k", server.uri("qemu")]), (e: { stdout: string }) =>
      /Pattern verification failed/.test(e.stdout),
    );
  });

  test("qemu-io over the unix socket URI", async (t) => {
    if (!installed("qemu-io")) return t.skip("qemu-io not installed");
    const e = make("qemu-unix", 4 * MiB);
    const { stdout } = await run("qemu-io", ["-f", "raw", "-c", "write -P 0x42 4k 8k", "-c", "read -P 0x42 4k 8k", server.unixUri("qemu-unix")]);
    assert.doesNotMatch(stdout, /fail/i);
    assert.ok(fs.readFileSync(e.path).subarray(4096, 12288).every((b) => b === 0x42));
  });

  test("nbdcopy an image in and out; SHA-256 matches", async (t) => {
    if (!installed("nbdcopy")) return t.skip("nbdcopy not installed (libnbd-bin)");
    const size = 24 * MiB;
    const e = make("copy", size);
    const src = path.join(dir, "src.img");
    const content = randomBytes(size);
    content.fill(0, 4 * MiB, 8 * MiB); // a zero run: nbdcopy may send it as WRITE_ZEROES
    fs.writeFileSync(src, content);
    await run("nbdcopy", ["--flush", src, server.uri("copy")]);
    assert.equal(sha256(fs.readFileSync(e.path)), sha256(content));
    const out = path.join(dir, "out.img");
    await run("nbdcopy", [server.unixUri("copy"), out]);
    assert.equal(sha256(fs.readFileSync(out)), sha256(content));
  });

  test("nbdinfo reports the export and the list", async (t) => {
    if (!installed("nbdinfo")) return t.skip("nbdinfo not installed (libnbd-bin)");
    make("info", 3 * MiB);
    const { stdout } = await run("nbdinfo", ["--json", server.uri("info")]);
    const j = JSON.parse(stdout) as { protocol: string; exports: Record<string, unknown>[] };
    assert.equal(j.protocol, "newstyle-fixed");
    const x = j.exports[0]!;
    assert.equal(x["export-name"], "info");
    assert.equal(x["export-size"], 3 * MiB);
    assert.equal(x["description"], "info test disk");
    for (const k of ["can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn"]) assert.equal(x[k], true, k);
    assert.equal(x["is_read_only"], false);
    const list = JSON.parse((await run("nbdinfo", ["--list", "--json", server.unixUri("")])).stdout) as { exports: { "export-name": string }[] };
    assert.ok(list.exports.some((x) => x["export-name"] === "info"));
  });

  test("fio --ioengine=nbd random writes verify with crc32c", async (t) => {
    if (!installed("fio")) return t.skip("fio not installed");
    const help = spawnSync("fio", ["--enghelp=nbd"], { encoding: "utf8" });
    if (help.status !== 0 || !/uri/.test(help.stdout)) return t.skip("fio built without the nbd engine");
    make("fio", 32 * MiB);
    for (const uri of [server.uri("fio"), server.unixUri("fio")]) {
      const { stdout } = await run(
        "fio",
        ["--name=srlab", "--ioengine=nbd", `--uri=${uri}`, "--rw=randwrite", "--bs=4k", "--size=16M", "--iodepth=32", "--verify=crc32c", "--do_verify=1", "--output-format=json"],
        { cwd: dir, maxBuffer: 16 * MiB },
      );
      const job = (JSON.parse(stdout.slice(stdout.indexOf("{"))) as { jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[] }).jobs[0]!;
      assert.equal(job.error, 0);
      assert.equal(job.write.io_bytes, 16 * MiB);
      assert.equal(job.read.io_bytes, 16 * MiB); // the verify pass read everything back
    }
  });
});
