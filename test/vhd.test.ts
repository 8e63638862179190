import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, test } from "vitest";
import { DirectoryBlobStore } from "../common/storage/index.js";
import { finishFixedVhdBlob, fixedVhdFooter, MiB, parseVhdFooter, rawSizeOfBlob, VHD_FOOTER_BYTES, vhdChecksum, vhdGeometry, vhdVirtualSize } from "../common/vhd/index.js";
import { hasTool } from "./support/images.js";

const work = mkdtempSync(join(tmpdir(), "srlab-vhd-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("fixed VHD footer", () => {
  test("has the specification's fields, big-endian, and a checksum over the rest", () => {
    const id = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const f = fixedVhdFooter({ sizeBytes: 32 * MiB, uniqueId: id, time: new Date(Date.UTC(2000, 0, 1, 0, 0, 10)) });
    assert.equal(f.length, 512);
    assert.equal(f.toString("latin1", 0, 8), "conectix");
    assert.equal(f.readUInt32BE(8), 2, "features: reserved bit set");
    assert.equal(f.readUInt32BE(12), 0x10000, "format version 1.0");
    assert.equal(f.readBigUInt64BE(16), 0xffffffffffffffffn, "fixed disks have no data offset");
    assert.equal(f.readUInt32BE(24), 10, "seconds since 2000-01-01");
    assert.equal(f.readBigUInt64BE(40), BigInt(32 * MiB), "original size");
    assert.equal(f.readBigUInt64BE(48), BigInt(32 * MiB), "current size");
    assert.equal(f.readUInt32BE(60), 2, "disk type fixed");
    assert.deepEqual(f.subarray(68, 84), id);
    assert.ok(f.subarray(85).every((b) => b === 0), "saved state and reserved bytes are zero");
    // The checksum is the one's complement of the byte sum without the checksum field.
    let sum = 0;
    for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += f[i]!;
    assert.equal(f.readUInt32BE(64), ~sum >>> 0);
    assert.equal(vhdChecksum(f), f.readUInt32BE(64));
  });

  test("parses back, and a single changed byte is rejected by the checksum", () => {
    const f = fixedVhdFooter({ sizeBytes: 3 * MiB });
    assert.deepEqual(parseVhdFooter(f)?.currentSize, 3 * MiB);
    assert.equal(parseVhdFooter(f)?.diskType, "fixed");
    const bad = Buffer.from(f);
    bad[48] ^= 1;
    assert.equal(parseVhdFooter(bad), undefined);
    assert.equal(parseVhdFooter(Buffer.alloc(512)), undefined);
  });

  test("CHS geometry follows the specification's algorithm", () => {
    assert.deepEqual(vhdGeometry(32 * MiB), { cylinders: 963, heads: 4, sectorsPerTrack: 17 });
    assert.deepEqual(vhdGeometry(1024 * MiB), { cylinders: 2080, heads: 16, sectorsPerTrack: 63 });
    // Capped at the largest geometry: readers then use the current size.
    assert.deepEqual(vhdGeometry(130 * 1024 * MiB), { cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
  });

  test("Azure's rule: virtual sizes are whole MiB", () => {
    assert.equal(vhdVirtualSize(1), MiB);
    assert.equal(vhdVirtualSize(MiB), MiB);
    assert.equal(vhdVirtualSize(MiB + 512), 2 * MiB);
    assert.throws(() => fixedVhdFooter({ sizeBytes: MiB + 512 }), /whole number of MiB/);
    assert.throws(() => vhdVirtualSize(0), /positive/);
  });

  test("qemu-img reads our VHD as the raw disk, and our parser accepts qemu's footer", (ctx) => {
    if (!hasTool("qemu-img")) return ctx.skip("qemu-img not installed (apt-get install qemu-utils)");
    const raw = Buffer.concat([randomBytes(MiB), Buffer.alloc(MiB), randomBytes(MiB / 2)]);
    const rawPath = join(work, "disk.raw");
    const vhdPath = join(work, "disk.vhd");
    writeFileSync(rawPath, raw);
    const virtual = vhdVirtualSize(raw.length);
    writeFileSync(vhdPath, Buffer.concat([raw, Buffer.alloc(virtual - raw.length), fixedVhdFooter({ sizeBytes: virtual })]));
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-f", "vpc", vhdPath]).toString()) as { "virtual-size": number; format: string };
    assert.equal(info.format, "vpc");
    assert.equal(info["virtual-size"], virtual);
    // compare exits 0 only when the contents are equal (the raw's shorter tail reads as zeros).
    execFileSync("qemu-img", ["compare", "-f", "vpc", "-F", "raw", vhdPath, rawPath]);
    execFileSync("qemu-img", ["create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", join(work, "q.vhd"), "8M"]);
    const theirs = readFileSync(join(work, "q.vhd"));
    const parsed = parseVhdFooter(theirs.subarray(theirs.length - VHD_FOOTER_BYTES));
    assert.equal(parsed?.currentSize, 8 * MiB, "an independent writer's checksum verifies");
  });

  test("a raw page blob becomes a fixed VHD in place, and its disk size reads back", async () => {
    const store = new DirectoryBlobStore({ directory: join(work, "store"), fsync: false });
    await store.init();
    const data = randomBytes(1536);
    await store.createPageBlob("d", MiB + 1536);
    await store.writePages("d", MiB, data);
    assert.deepEqual(await rawSizeOfBlob(store, "d"), { blobBytes: MiB + 1536, diskBytes: MiB + 1536 });
    const size = await finishFixedVhdBlob(store, "d", MiB + 1536);
    assert.equal(size, 2 * MiB + 512);
    const read = await rawSizeOfBlob(store, "d");
    assert.equal(read?.diskBytes, 2 * MiB);
    assert.equal(read?.vhd?.diskType, "fixed");
    assert.deepEqual(await store.readPages("d", MiB, 1536), data, "the data part is untouched");
    assert.ok((await store.readPages("d", MiB + 1536, MiB - 1536)).every((b) => b === 0), "the padding to a whole MiB is zero");
    await store.close();
  });
});
