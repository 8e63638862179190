import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../common/config/index.js";
import { SrlabError } from "../common/errors/index.js";
import { NBD, NbdClient } from "../common/nbd/index.js";
import { decodeSegment, deriveSegmentKey, encodeSegment, SegmentIntegrityError } from "../common/segment/index.js";
import { mobilityAgentOptions } from "../mobility-agent/options.js";
import { FileExport, NbdServer } from "../mobility-agent/nbd/index.js";
import { encodeFrame, FrameReader, frameCrcOk, FRAME_HEADER, MAX_PAYLOAD, parseFrameHeader } from "../process-server/cache/frame.js";
import { validateBatch } from "../process-server/intake/record-validation.js";
import { ReplicateRequest, WriteKind, type WriteRecord } from "../proto/index.js";

/**
 * Property-based tests of every parser that reads outside input: thousands of random and mutated
 * inputs each; every one ends in a result or the parser's own clear error, never a crash.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "srlab-fuzz-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A valid input with random byte flips, truncation or junk appended. */
function mutated(valid: Uint8Array): fc.Arbitrary<Buffer> {
  return fc
    .record({
      flips: fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      tail: fc.uint8Array({ maxLength: 32 }),
    })
    .map(({ flips, cut, tail }) => {
      const b = Buffer.from(valid);
      for (const f of flips) b[f.at % b.length] = b[f.at % b.length]! ^ f.xor;
      const cutAt = cut === undefined ? b.length : cut % (b.length + 1);
      return Buffer.concat([b.subarray(0, cutAt), Buffer.from(tail)]);
    });
}

function record(sequence: number, data = Buffer.from("abcdefgh".repeat(64))): WriteRecord {
  return { sequence, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 4096 * sequence, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 1, readAtSequence: 0 };
}

describe("segment decode", () => {
  const key = deriveSegmentKey("fuzz-secret", "k1");
  const keys = (id: string) => (id === "k1" ? key : undefined);
  let valid: Buffer;
  beforeAll(async () => {
    valid = await encodeSegment([record(5), record(6), record(7)], { machineId: "vm-1", key, keyId: "k1", codec: "deflate-1" });
  });

  test("random bytes are refused as integrity failures", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        await expect(decodeSegment(Buffer.from(bytes), keys)).rejects.toBeInstanceOf(SegmentIntegrityError);
      }),
      { numRuns: 2000 },
    );
  });

  test("a mutated segment decodes to the same records or is refused as an integrity failure", async () => {
    await fc.assert(
      fc.asyncProperty(mutated(valid), async (bytes) => {
        if (bytes.equals(valid)) return;
        await expect(decodeSegment(bytes, keys, { machineId: "vm-1" })).rejects.toBeInstanceOf(SegmentIntegrityError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("cache frames", () => {
  test("any 24-byte header parses to a plausible frame or to nothing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: FRAME_HEADER, maxLength: FRAME_HEADER }), (bytes) => {
        const info = parseFrameHeader(Buffer.from(bytes));
        if (info) {
          expect(info.payloadLength).toBeGreaterThan(0);
          expect(info.payloadLength).toBeLessThanOrEqual(MAX_PAYLOAD);
        }
      }),
      { numRuns: 5000 },
    );
  });

  /** A cache file held in memory, read through the FileHandle calls FrameReader makes. */
  const handleOf = (b: Buffer) =>
    ({
      read: async (buf: Buffer, off: number, len: number, pos: number) => {
        const n = Math.max(0, Math.min(len, b.length - pos));
        if (n > 0) b.copy(buf, off, pos, pos + n);
        return { bytesRead: n, buffer: buf };
      },
    }) as unknown as fs.promises.FileHandle;

  test("a damaged cache file scans to whole, CRC-checked frames and then stops at the damage", async () => {
    const frames = [encodeFrame(1, 10, Buffer.from("first")), encodeFrame(2, 11, Buffer.alloc(300, 7)), encodeFrame(3, 12, Buffer.from("third"))];
    const valid = Buffer.concat(frames);
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(valid), fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u))), async (file) => {
        const reader = new FrameReader(handleOf(file), 0, file.length, 64);
        for (let i = 0; i < 10; i++) {
          const next = await reader.next();
          if (next === "end" || next === "torn") return;
          expect(frameCrcOk(next.frame)).toBe(true);
          expect(next.frame.length).toBe(FRAME_HEADER + next.payloadLength);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("replication records", () => {
  const disk = (i: number) => (i === 0 ? { index: 0, sizeBytes: 1 << 20, addedAtSequence: 0 } : undefined);
  const anyNumber = fc.oneof(fc.integer({ min: -5, max: 1 << 21 }), fc.constantFrom(2 ** 53, 2 ** 64, -1, Number.NaN, 1.5, Number.MAX_SAFE_INTEGER));
  const anyRecord = fc.record({
    sequence: anyNumber,
    kind: fc.integer({ min: -1, max: 6 }),
    diskIndex: fc.integer({ min: -1, max: 3 }),
    offset: anyNumber,
    length: anyNumber,
    data: fc.uint8Array({ maxLength: 1024 }).map((u) => Buffer.from(u)),
    tagName: fc.string({ maxLength: 8 }),
    consistencyGroup: fc.string({ maxLength: 8 }),
    capturedAtMs: anyNumber,
  }) as fc.Arbitrary<WriteRecord>;

  test("any batch is accepted whole or refused with one SrlabError naming the problem", () => {
    fc.assert(
      fc.property(fc.array(anyRecord, { maxLength: 6 }), fc.integer({ min: 0, max: 10 }), (records, last) => {
        try {
          const fresh = validateBatch(records, disk as never, last);
          for (const r of fresh) expect(r.sequence).toBeGreaterThan(last);
        } catch (err) {
          expect(err).toBeInstanceOf(SrlabError);
          expect((err as Error).message.length).toBeGreaterThan(10);
        }
      }),
      { numRuns: 5000 },
    );
  });

  test("random and mutated stream messages decode or fail with an Error, never hang or crash", () => {
    const valid = ReplicateRequest.encode({ message: { $case: "batch", value: { records: [record(1), record(2)] } } }).finish();
    fc.assert(
      fc.property(fc.oneof(mutated(valid), fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u))), (bytes) => {
        try {
          ReplicateRequest.decode(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("config files", () => {
  const valid = "name: vm1\ndataDir: /tmp/vm1\nconfigServer:\n  address: 127.0.0.1:1\n  passphrase: twelve-chars\ndisks:\n  - path: /tmp/vm1/d0.img\n    sizeBytes: 1048576\n";
  test("any file content loads to valid options or to one ConfigError", () => {
    const file = path.join(dir, "agent.yaml");
    fc.assert(
      fc.property(fc.oneof(mutated(Buffer.from(valid)).map((b) => b.toString("latin1")), fc.string({ maxLength: 200 })), (text) => {
        fs.writeFileSync(file, text);
        try {
          loadConfig(mobilityAgentOptions, { file });
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as Error).message).toContain(file);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("NBD requests and options", () => {
  let server: NbdServer;
  let disk: FileExport;
  const socketPath = path.join(dir, "nbd.sock");

  beforeAll(async () => {
    disk = new FileExport({ name: "disk0", path: path.join(dir, "disk0.img"), createSize: 1 << 20 });
    server = new NbdServer({ exports: [disk], socketPath, tcp: false });
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    disk.close();
  });

  /** Sends `bytes` on a fresh connection, then closes it; resolves once the socket is closed. */
  function session(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const s = net.connect(socketPath);
      const done = setTimeout(() => s.destroy(), 300);
      s.on("data", () => {});
      s.on("error", () => {});
      s.on("close", () => {
        clearTimeout(done);
        resolve();
      });
      s.on("connect", () => s.end(bytes));
    });
  }

  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const option = (opt: number, data: Buffer, claimed = data.length) => {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(NBD.NBD_OPTS_MAGIC, 0);
    h.writeUInt32BE(opt >>> 0, 8);
    h.writeUInt32BE(claimed >>> 0, 12);
    return Buffer.concat([h, data]);
  };
  const clientFlags = u32(NBD.NBD_FLAG_C_FIXED_NEWSTYLE | NBD.NBD_FLAG_C_NO_ZEROES);

  test("random option haggling is answered or closed, and the server keeps serving", async () => {
    const anyOption = fc
      .record({
        opt: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.nat()),
        data: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
        lie: fc.option(fc.nat(), { nil: undefined }),
      })
      .map(({ opt, data, lie }) => option(opt, data, lie ?? data.length));
    const validGo = option(NBD.NBD_OPT_GO, Buffer.concat([u32(5), Buffer.from("disk0"), Buffer.from([0, 0])]));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.array(anyOption, { maxLength: 4 }).map((opts) => Buffer.concat([clientFlags, ...opts])),
          mutated(Buffer.concat([clientFlags, validGo])),
          fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
        ),
        async (bytes) => {
          await session(bytes);
        },
      ),
      { numRuns: 400 },
    );
    const c = await NbdClient.connect({ socketPath }, "disk0");
    expect(c.size).toBe(1 << 20);
    await c.close();
  });

  test("random transmission requests get replies or a closed connection, and the server keeps serving", async () => {
    const exportName = option(NBD.NBD_OPT_EXPORT_NAME, Buffer.from("disk0"));
    const request = fc
      .record({
        magic: fc.oneof(fc.constant(NBD.NBD_REQUEST_MAGIC), fc.nat()),
        flags: fc.integer({ min: 0, max: 0xffff }),
        type: fc.integer({ min: 0, max: 12 }),
        offset: fc.oneof(fc.integer({ min: 0, max: (1 << 20) + 4096 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
        length: fc.oneof(fc.integer({ min: 0, max: 8192 }), fc.nat()),
        payload: fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)),
      })
      .map((r) => {
        const h = Buffer.alloc(28);
        h.writeUInt32BE(r.magic >>> 0, 0);
        h.writeUInt16BE(r.flags, 4);
        h.writeUInt16BE(r.type, 6);
        h.writeBigUInt64BE(7n, 8);
        h.writeBigUInt64BE(BigInt(r.offset), 16);
        h.writeUInt32BE(r.length >>> 0, 24);
        return Buffer.concat([h, r.payload]);
      });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 3 }), async (requests) => {
        await session(Buffer.concat([clientFlags, exportName, ...requests]));
      }),
      { numRuns: 400 },
    );
    const c = await NbdClient.connect({ socketPath }, "disk0");
    await c.write(0, Buffer.alloc(4096, 9));
    expect((await c.read(0, 4096)).equals(Buffer.alloc(4096, 9))).toBe(true);
    await c.close();
  });
});
