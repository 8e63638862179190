import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { isZero } from "../common/bytes/index.js";
import {
  readFully,
  readFullySync,
  readJson,
  removeFileDurablySync,
  writeFileAtomic,
  writeFileAtomicSync,
  writeFully,
  writeJsonAtomic,
} from "../common/fs/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "srlab-fs-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("atomic writes", () => {
  test("replace the content and leave no staging file behind", async () => {
    const path = join(dir, "state.json");
    await writeFile(path, "old");
    await writeFileAtomic(path, "new");
    expect(await readFile(path, "utf8")).toBe("new");
    writeFileAtomicSync(path, "newer");
    expect(await readFile(path, "utf8")).toBe("newer");
    expect(await readdir(dir)).toEqual(["state.json"]);
  });

  test("a failed write keeps the old content and removes the staging file", async () => {
    const path = join(dir, "missing-dir", "file");
    await expect(writeFileAtomic(path, "x")).rejects.toThrow(/ENOENT/);
    const target = join(dir, "target");
    await writeFile(target, "old");
    // Renaming a file over a directory fails after the staging file was written.
    const blocked = join(dir, "blocked");
    await writeFile(join(dir, "placeholder"), "");
    await import("node:fs/promises").then((fs) => fs.mkdir(blocked));
    await writeFile(join(blocked, "child"), "");
    await expect(writeFileAtomic(blocked, "x")).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(["blocked", "placeholder", "target"]);
    expect(await readFile(target, "utf8")).toBe("old");
  });

  test("mode is applied whatever the umask", async () => {
    const path = join(dir, "key.pem");
    await writeFileAtomic(path, "secret", { mode: 0o600 });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  test("JSON round trip creates the directory; a missing file reads as undefined", async () => {
    const path = join(dir, "a", "b.json");
    expect(await readJson(path)).toBeUndefined();
    await writeJsonAtomic(path, { sequence: 7 });
    expect(await readJson<{ sequence: number }>(path)).toEqual({ sequence: 7 });
  });

  test("removeFileDurablySync removes, and is a no-op for a missing file", async () => {
    const path = join(dir, "marker");
    await writeFile(path, "x");
    removeFileDurablySync(path);
    expect(existsSync(path)).toBe(false);
    removeFileDurablySync(path);
  });
});

describe("positional I/O", () => {
  test("writeFully/readFully move every byte; reads past the end are zeros", async () => {
    const path = join(dir, "image");
    const fh = await open(path, "w+");
    try {
      const data = Buffer.alloc(3 * 1024 * 1024 + 5, 0xab);
      await writeFully(fh, data, 4096);
      const back = Buffer.alloc(data.length);
      await readFully(fh, back, 4096);
      expect(back.equals(data)).toBe(true);
      const tail = Buffer.alloc(16, 0xff);
      await readFully(fh, tail, 4096 + data.length - 8);
      expect([...tail]).toEqual([...Buffer.alloc(8, 0xab), ...Buffer.alloc(8)]);
      const sync = readFullySync(fh.fd, 4096 + data.length - 4, 8);
      expect([...sync]).toEqual([0xab, 0xab, 0xab, 0xab, 0, 0, 0, 0]);
    } finally {
      await fh.close();
    }
  });
});

describe("isZero", () => {
  test("finds a single non-zero byte anywhere, at any alignment", () => {
    const size = 200 * 1024 + 3;
    const buf = Buffer.alloc(size);
    expect(isZero(buf)).toBe(true);
    expect(isZero(Buffer.alloc(0))).toBe(true);
    for (const at of [0, 1, 65535, 65536, 131073, size - 1]) {
      buf[at] = 1;
      expect(isZero(buf)).toBe(false);
      expect(isZero(buf.subarray(at + 1))).toBe(true);
      buf[at] = 0;
    }
    expect(isZero(new Uint8Array([0, 0, 2]))).toBe(false);
  });
});
