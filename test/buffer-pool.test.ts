import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { BufferPool, SharedBufferPool } from "../common/bytes/index.js";
import { seededInts } from "../common/random/index.js";
import { ApplyCostModel, applyRecords, PAGE_SIZE, type PageTarget } from "../common/replica/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("buffer pool", () => {
  test("hands a given-back buffer out again, once, and never pools one of another size", () => {
    const pool = new BufferPool(64 * KiB, 2);
    const a = pool.take(10 * KiB);
    expect(a.length).toBe(10 * KiB);
    pool.give(a);
    pool.give(a); // twice: still only one user at a time
    const b = pool.take(64 * KiB);
    const c = pool.take(64 * KiB);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
    const big = pool.take(128 * KiB);
    expect(big.length).toBe(128 * KiB);
    pool.give(big);
    expect(pool.take(64 * KiB).buffer).not.toBe(big.buffer);
  });

  test("keeps at most `keep` unused buffers", () => {
    const pool = new BufferPool(4 * KiB, 1);
    const [a, b] = [pool.take(4 * KiB), pool.take(4 * KiB)];
    pool.give(a);
    pool.give(b);
    expect(pool.take(4 * KiB).buffer).toBe(a.buffer);
    expect(pool.take(4 * KiB).buffer).not.toBe(b.buffer);
  });
});

describe("shared buffer pool", () => {
  test("hands out shared memory, reuses a given-back buffer for a request of at least half its size", () => {
    const pool = new SharedBufferPool(64 * KiB, 1 * MiB);
    const a = pool.take(100 * KiB);
    expect(a.length).toBe(100 * KiB);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a.buffer.byteLength).toBe(128 * KiB);
    pool.give(a);
    pool.give(a); // twice: still one user at a time
    expect(pool.idleBytes).toBe(128 * KiB);
    const small = pool.take(10 * KiB); // rounds to 64 KiB: a 128 KiB buffer is at most twice that
    expect(small.buffer).toBe(a.buffer);
    expect(pool.take(10 * KiB).buffer).not.toBe(a.buffer);
    pool.give(small);
    const big = pool.take(300 * KiB);
    expect(big.buffer).not.toBe(a.buffer);
    pool.give(big);
    expect(pool.take(120 * KiB).buffer).toBe(a.buffer);
  });

  test("holds at most keepBytes unused, and never a buffer that is not its own kind", () => {
    const pool = new SharedBufferPool(64 * KiB, 256 * KiB);
    const bufs = [pool.take(64 * KiB), pool.take(128 * KiB), pool.take(192 * KiB)];
    for (const b of bufs) pool.give(b);
    expect(pool.idleBytes).toBeLessThanOrEqual(256 * KiB);
    expect(pool.take(192 * KiB).buffer).not.toBe(bufs[2]!.buffer);
    pool.give(Buffer.alloc(64 * KiB));
    pool.give(bufs[0]!.subarray(1));
    expect(pool.idleBytes).toBeLessThanOrEqual(256 * KiB);
  });

  test("a worker reads a taken buffer in place", async () => {
    const { Worker } = await import("node:worker_threads");
    const pool = new SharedBufferPool();
    const buf = pool.take(5);
    buf.write("hello");
    const worker = new Worker("require('node:worker_threads').parentPort.once('message', (b) => { const s = Buffer.from(b.buffer, b.byteOffset, b.length); const t = s.toString(); s.write('HELLO'); require('node:worker_threads').parentPort.postMessage(t); })", { eval: true });
    try {
      const seen = await new Promise((resolve) => {
        worker.once("message", resolve);
        worker.postMessage(buf);
      });
      expect(seen).toBe("hello");
      expect(buf.toString()).toBe("HELLO"); // the same memory, not a copy
    } finally {
      await worker.terminate();
    }
  });
});

/** An in-memory page blob. */
class MemoryBlob implements PageTarget {
  constructor(readonly image: Buffer) {}
  async readPages(offset: number, length: number): Promise<Buffer> {
    return Buffer.from(this.image.subarray(offset, offset + length));
  }
  async readPagesInto(offset: number, into: Buffer): Promise<void> {
    this.image.copy(into, 0, offset, offset + into.length);
  }
  async writePages(offset: number, data: Buffer): Promise<void> {
    await Promise.resolve();
    data.copy(this.image, offset);
  }
  async clearPages(offset: number, length: number): Promise<void> {
    this.image.fill(0, offset, offset + length);
  }
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function write(sequence: number, offset: number, data: Buffer): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 };
}

test("block-wise apply with reused buffers leaves the same image as with fresh ones, batch after batch", async () => {
  const size = 16 * MiB;
  const fresh = new MemoryBlob(Buffer.alloc(size));
  const pooled = new MemoryBlob(Buffer.alloc(size));
  const buffers = new BufferPool(4 * MiB);
  // Calls dear, bytes cheap: dense batches become whole blocks.
  const cost = () => new ApplyCostModel({ perCallSeconds: 0.01, perByteSeconds: 1e-10 });
  const rand = seededInts(7);
  let sequence = 1;
  for (let batch = 0; batch < 6; batch++) {
    // Random 4–64 KiB writes, some unaligned, over a region that moves: a reused buffer that kept
    // the previous block's bytes would show through wherever this batch neither writes nor reads.
    const base = batch * 2 * MiB;
    const records = Array.from({ length: 200 }, () => {
      const length = (1 + rand(16)) * 4 * KiB - (rand(4) === 0 ? rand(PAGE_SIZE) : 0);
      return write(sequence++, base + rand(4 * MiB - length), randomBytes(length));
    });
    // The fresh side reads through readPages; the pooled side reads into its reused buffers.
    await applyRecords({ readPages: (o, l) => fresh.readPages(o, l), writePages: (o, d) => fresh.writePages(o, d), clearPages: (o, l) => fresh.clearPages(o, l) }, records, 0, size, {
      blocks: { cost: cost() },
    });
    await applyRecords(pooled, records, 0, size, { blocks: { cost: cost() }, buffers });
    expect(sha(pooled.image)).toBe(sha(fresh.image));
  }
});
