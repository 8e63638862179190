import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  BlockHashTree,
  deserializeSummary,
  deserializeTree,
  formatByteRange,
  hashBuffer,
  hashImageFile,
  serializeSummary,
  serializeTree,
  xxh3128,
} from "../common/blockhash/index.js";

const PAGE = 4096;

describe("block-hash tree", () => {
  test("a new tree is the tree of a disk of zeros, for sizes around page and level boundaries", () => {
    for (const size of [0, 1, 4095, 4096, 4097, 3 * PAGE, 5 * PAGE + 7, 7 * PAGE, 8 * PAGE, (1 << 20) + 1]) {
      expect(new BlockHashTree({ sizeBytes: size }).fingerprint(), `size ${size}`).toBe(hashBuffer(Buffer.alloc(size)).fingerprint());
    }
  });

  test("the fingerprint binds the disk size: zeros of different lengths differ", () => {
    expect(hashBuffer(Buffer.alloc(PAGE)).fingerprint()).not.toBe(hashBuffer(Buffer.alloc(PAGE - 1)).fingerprint());
    expect(hashBuffer(Buffer.alloc(PAGE)).root()).toEqual(hashBuffer(Buffer.alloc(PAGE - 1)).root());
  });

  test("incremental updates (aligned, unaligned, zeroing) give the tree of the final contents", () => {
    const op = fc.record({
      kind: fc.constantFrom("write", "zero"),
      at: fc.nat(),
      len: fc.integer({ min: 0, max: 3 * PAGE }),
      seed: fc.nat(255),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 * PAGE + 100 }), fc.array(op, { maxLength: 25 }), fc.boolean(), (size, ops, rootBetween) => {
        const disk = Buffer.alloc(size);
        const tree = new BlockHashTree({ sizeBytes: size });
        const readPage = (i: number) => disk.subarray(i * PAGE, Math.min((i + 1) * PAGE, size));
        for (const o of ops) {
          const offset = o.at % size;
          const length = Math.min(o.len, size - offset);
          if (o.kind === "write") {
            const data = Buffer.alloc(length, o.seed);
            data.copy(disk, offset);
            tree.update(offset, data, readPage);
          } else {
            disk.fill(0, offset, offset + length);
            tree.zero(offset, length, readPage);
          }
          if (rootBetween) tree.root(); // interleaving reads of the root must not change the result
        }
        expect(tree.fingerprint()).toBe(hashBuffer(disk).fingerprint());
      }),
      { numRuns: 200 },
    );
  });

  test("a write that covers part of a page needs the page's bytes", () => {
    const tree = new BlockHashTree({ sizeBytes: 4 * PAGE });
    expect(() => tree.update(100, Buffer.alloc(10, 1))).toThrow(/part of page 0/);
    expect(() => tree.update(4 * PAGE - 1, Buffer.alloc(2))).toThrow(/outside/);
    tree.update(PAGE, Buffer.alloc(PAGE, 1)); // whole page: no reader needed
  });

  test("a clone keeps the tree as of the moment while the original moves on", () => {
    const disk = randomBytes(6 * PAGE);
    const tree = hashBuffer(disk);
    const atTag = tree.clone();
    const before = tree.fingerprint();
    tree.update(2 * PAGE, Buffer.alloc(PAGE, 9));
    expect(atTag.fingerprint()).toBe(before);
    expect(tree.fingerprint()).not.toBe(before);
  });
});

describe("XXH3-128", () => {
  test("gives the reference digests in canonical (big-endian) form, and the same for a view as for a copy", () => {
    // Reference values of XXH3_128bits (seed 0) from the xxHash project.
    expect(xxh3128(Buffer.alloc(0)).toString("hex")).toBe("99aa06d3014798d86001c324468d497f");
    expect(xxh3128(Buffer.from("abc")).toString("hex")).toBe("06b05ab6733a618578af5f94892f3950");
    const big = randomBytes(3 * 65536 + 5);
    const view = big.subarray(100, 100 + 65536);
    expect(xxh3128(view)).toEqual(xxh3128(Buffer.from(view)));
    expect(xxh3128(view)).not.toEqual(xxh3128(big.subarray(101, 101 + 65536)));
  });
});

describe("diff", () => {
  test("names the page of a flipped byte", () => {
    const disk = randomBytes(64 * PAGE);
    const corrupted = Buffer.from(disk);
    corrupted[37 * PAGE + 123] ^= 0xff;
    const ranges = hashBuffer(disk).diff(hashBuffer(corrupted));
    expect(ranges).toEqual([{ offset: 37 * PAGE, length: PAGE }]);
    expect(formatByteRange(ranges[0])).toBe(`bytes ${37 * PAGE}-${38 * PAGE - 1} (4096 bytes)`);
  });

  test("merges adjacent pages and keeps separate runs apart; equal trees have no ranges", () => {
    const disk = randomBytes(33 * PAGE + 10);
    const other = Buffer.from(disk);
    for (const p of [3, 4, 5, 20]) other[p * PAGE] ^= 1;
    other[33 * PAGE + 9] ^= 1; // the short last page
    expect(hashBuffer(disk).diff(hashBuffer(other))).toEqual([
      { offset: 3 * PAGE, length: 3 * PAGE },
      { offset: 20 * PAGE, length: PAGE },
      { offset: 33 * PAGE, length: 10 },
    ]);
    expect(hashBuffer(disk).diff(hashBuffer(Buffer.from(disk)))).toEqual([]);
  });

  test("disks of different sizes differ in their tail", () => {
    const disk = randomBytes(10 * PAGE);
    const longer = Buffer.concat([disk, Buffer.alloc(3 * PAGE)]);
    expect(hashBuffer(disk).diff(hashBuffer(longer))).toEqual([{ offset: 10 * PAGE, length: 3 * PAGE }]);
  });

  test("a summary names the ranges at its level's granularity", () => {
    const disk = randomBytes(1024 * PAGE);
    const corrupted = Buffer.from(disk);
    corrupted[700 * PAGE + 5] ^= 1;
    const summary = hashBuffer(disk).summary(64); // 1024 leaves → level 4, 16 pages per node
    expect(summary.level).toBe(4);
    expect(hashBuffer(corrupted).diffSummary(summary)).toEqual([{ offset: 688 * PAGE, length: 16 * PAGE }]);
    expect(hashBuffer(disk).diffSummary(deserializeSummary(serializeSummary(summary)))).toEqual([]);
    // A small disk keeps its leaves: the range is exact.
    expect(hashBuffer(corrupted).diffSummary(hashBuffer(disk).summary())).toEqual([{ offset: 700 * PAGE, length: PAGE }]);
  });
});

describe("serialization and images", () => {
  test("a serialized tree reloads to the same tree; garbage is refused", () => {
    const tree = hashBuffer(randomBytes(11 * PAGE + 3));
    const copy = deserializeTree(serializeTree(tree));
    expect(copy.fingerprint()).toBe(tree.fingerprint());
    expect(copy.sizeBytes).toBe(tree.sizeBytes);
    expect(() => deserializeTree(Buffer.from("not a tree at all, clearly"))).toThrow(/not a serialized/);
    expect(() => deserializeTree(serializeTree(tree).subarray(0, 40))).toThrow(/leaf hashes/);
  });

  test("an image file hashes like its bytes; a short sparse file reads as zeros", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blockhash-"));
    try {
      const bytes = randomBytes(3 * PAGE + 500);
      const file = path.join(dir, "disk.img");
      fs.writeFileSync(file, bytes);
      const progress: number[] = [];
      const tree = await hashImageFile(file, { chunkBytes: PAGE, onProgress: (done) => progress.push(done) });
      expect(tree.fingerprint()).toBe(hashBuffer(bytes).fingerprint());
      expect(progress.at(-1)).toBe(bytes.length);
      const extended = await hashImageFile(file, { sizeBytes: 8 * PAGE });
      expect(extended.fingerprint()).toBe(hashBuffer(Buffer.concat([bytes, Buffer.alloc(8 * PAGE - bytes.length)])).fingerprint());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the script in docs/fingerprint.md computes the same fingerprint", (ctx) => {
    // The system interpreter first: version-manager shims take seconds to start.
    const python = ["/usr/bin/python3", "python3"].find((p) => {
      try {
        execFileSync(p, ["--version"], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    });
    if (!python) return ctx.skip("python3 not installed");
    const doc = fs.readFileSync(path.join(import.meta.dirname, "..", "docs", "fingerprint.md"), "utf8");
    const script = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(script, "docs/fingerprint.md holds a python script").toBeTruthy();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "blockhash-py-"));
    try {
      fs.writeFileSync(path.join(dir, "fingerprint.py"), script!);
      for (const [name, bytes] of [
        ["odd.img", Buffer.concat([randomBytes(5 * PAGE + 17), Buffer.alloc(2 * PAGE)])],
        ["empty.img", Buffer.alloc(0)],
        ["pow2.img", randomBytes(8 * PAGE)],
      ] as const) {
        fs.writeFileSync(path.join(dir, name), bytes);
        const out = execFileSync(python, [path.join(dir, "fingerprint.py"), path.join(dir, name)], { encoding: "utf8" }).trim();
        expect(out, name).toBe(hashBuffer(bytes).fingerprint());
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
