import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { NBD, NbdClient, type NbdCommandError, NbdHandshake, NbdOptionError, type NbdTarget } from "../common/nbd/index.js";
import { FileExport, type NbdExport, NbdExportError, NbdServer } from "../mobility-agent/nbd/index.js";

const MiB = 1024 * 1024;

/** Wraps an export to record the order writes arrive in and to block writes on demand. */
class RecordingExport implements NbdExport {
  readonly log: { offset: number; first: number }[] = [];
  blockedReason: string | undefined;
  failNext: Error | undefined;
  constructor(
    private readonly inner: FileExport,
    readonly name: string,
  ) {}
  get size() {
    return this.inner.size;
  }
  read(o: number, l: number) {
    return this.inner.read(o, l);
  }
  async write(o: number, d: Buffer, fua: boolean) {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    this.log.push({ offset: o, first: d[0]! });
    // An async export: makes the server's in-order handling actually matter.
    await new Promise((r) => setImmediate(r));
    this.inner.write(o, d, fua);
  }
  writeZeroes(o: number, l: number, fua: boolean) {
    this.inner.writeZeroes(o, l, fua);
  }
  trim() {}
  flush() {
    this.inner.flush();
  }
  writeBlockedReason() {
    return this.blockedReason;
  }
}

describe("NbdServer with the built-in client", () => {
  let dir: string;
  let server: NbdServer;
  let disk: FileExport;
  let rec: RecordingExport;
  let tcp: NbdTarget;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "srlab-nbd-"));
    disk = new FileExport({ name: "disk0", path: path.join(dir, "disk0.img"), createSize: 8 * MiB, description: "first disk" });
    rec = new RecordingExport(new FileExport({ name: "x", path: path.join(dir, "rec.img"), createSize: 4 * MiB }), "rec");
    server = new NbdServer({ exports: [disk, rec], socketPath: path.join(dir, "nbd.sock") });
    await server.start();
    tcp = { host: "127.0.0.1", port: server.tcpPort };
  });

  afterAll(async () => {
    await server.stop();
    disk.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("handshake greets with fixed newstyle and no-zeroes", async () => {
    const h = await NbdHandshake.open(tcp);
    assert.equal(h.serverFlags, NBD.NBD_FLAG_FIXED_NEWSTYLE | NBD.NBD_FLAG_NO_ZEROES);
    await h.abort();
  });

  test("NBD_OPT_LIST names every export with its description", async () => {
    const list = await NbdClient.list(tcp);
    assert.deepEqual(list, [
      { name: "disk0", description: "first disk" },
      { name: "rec", description: "" },
    ]);
  });

  test("NBD_OPT_INFO reports size, flags, name, description and block sizes", async () => {
    const info = await NbdClient.info(tcp, "disk0");
    assert.equal(info.size, 8 * MiB);
    assert.equal(info.name, "disk0");
    assert.equal(info.description, "first disk");
    assert.deepEqual(info.blockSize, { minimum: 1, preferred: 4096, maximum: 32 * MiB });
    for (const f of [NBD.NBD_FLAG_HAS_FLAGS, NBD.NBD_FLAG_SEND_FLUSH, NBD.NBD_FLAG_SEND_FUA, NBD.NBD_FLAG_SEND_TRIM, NBD.NBD_FLAG_SEND_WRITE_ZEROES, NBD.NBD_FLAG_CAN_MULTI_CONN]) {
      assert.ok(info.transmissionFlags & f, `flag ${f} advertised`);
    }
    assert.equal(info.transmissionFlags & NBD.NBD_FLAG_READ_ONLY, 0);
    // An export without canMultiConn must not claim it.
    const recInfo = await NbdClient.info(tcp, "rec");
    assert.equal(recInfo.transmissionFlags & NBD.NBD_FLAG_CAN_MULTI_CONN, 0);
  });

  test("NBD_OPT_GO for an unknown export is refused with ERR_UNKNOWN; the connection can retry", async () => {
    await assert.rejects(NbdClient.connect(tcp, "nope"), (e: unknown) => e instanceof NbdOptionError && e.replyType === NBD.NBD_REP_ERR_UNKNOWN);
    const h = await NbdHandshake.open(tcp);
    await assert.rejects(h.infoOrGo(NBD.NBD_OPT_GO, "nope", []), NbdOptionError);
    const info = await h.infoOrGo(NBD.NBD_OPT_GO, "disk0", []);
    assert.equal(info.size, 8 * MiB);
    h.socket.destroy();
  });

  test("unknown and structured-reply options get ERR_UNSUP", async () => {
    const h = await NbdHandshake.open(tcp);
    for (const opt of [NBD.NBD_OPT_STRUCTURED_REPLY, NBD.NBD_OPT_STARTTLS, 999]) {
      h.sendOption(opt);
      const rep = await h.readReply();
      assert.equal(rep.option, opt);
      assert.equal(rep.type, NBD.NBD_REP_ERR_UNSUP);
    }
    h.sendOption(NBD.NBD_OPT_LIST, Buffer.from("junk"));
    assert.equal((await h.readReply()).type, NBD.NBD_REP_ERR_INVALID);
    await h.abort();
  });

  test("NBD_OPT_EXPORT_NAME enters transmission (old-style selection)", async () => {
    const h = await NbdHandshake.open(tcp);
    h.sendOption(NBD.NBD_OPT_EXPORT_NAME, Buffer.from("disk0"));
    const reply = await h.reader.read(10); // no 124 zero bytes: we negotiated NO_ZEROES
    assert.equal(NBD.readU64(reply, 0), 8 * MiB);
    assert.ok(reply.readUInt16BE(8) & NBD.NBD_FLAG_SEND_FLUSH);
    h.socket.destroy();
  });

  test("read / write / write-zeroes / trim / flush round trip", async () => {
    const c = await NbdClient.connect(tcp, "disk0");
    const data = Buffer.alloc(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    await c.write(MiB + 123, data);
    await c.write(2 * MiB, data.subarray(0, 4096), { fua: true });
    assert.deepEqual(await c.read(MiB + 123, data.length), data);
    await c.writeZeroes(MiB + 1000, 5000, { noHole: true });
    await c.writeZeroes(MiB + 20000, 100, { fua: true });
    await c.trim(4 * MiB, 64 * 1024);
    await c.flush();
    const expect = Buffer.from(data);
    expect.fill(0, 1000 - 123, 6000 - 123);
    expect.fill(0, 20000 - 123, 20100 - 123);
    assert.deepEqual(await c.read(MiB + 123, data.length), expect);
    // And the bytes are really in the image file.
    const onDisk = fs.readFileSync(disk.path).subarray(MiB + 123, MiB + 123 + data.length);
    assert.deepEqual(onDisk, expect);
    // Whole-disk-sized read at the very end works.
    assert.equal((await c.read(8 * MiB - 1, 1)).length, 1);
    await c.close();
  });

  test("out-of-range requests get EINVAL/ENOSPC and the connection stays usable", async () => {
    const c = await NbdClient.connect(tcp, "disk0");
    const end = 8 * MiB;
    const code = (p: Promise<unknown>) => p.then(() => "ok", (e: NbdCommandError) => e.code);
    assert.equal(await code(c.read(end - 10, 20)), "EINVAL");
    assert.equal(await code(c.write(end - 10, Buffer.alloc(20, 1))), "ENOSPC");
    assert.equal(await code(c.writeZeroes(end, 1)), "ENOSPC");
    assert.equal(await code(c.trim(end - 1, 2)), "EINVAL");
    // Offsets beyond 2^53 are parsed without losing the stream.
    assert.equal(await code(c.request(NBD.NBD_CMD_READ, 0, 2 ** 60, 10)), "EINVAL");
    // Unknown command and an undefined flag.
    assert.equal(await code(c.request(NBD.NBD_CMD_CACHE, 0, 0, 10)), "EINVAL");
    assert.equal(await code(c.request(NBD.NBD_CMD_READ, NBD.NBD_CMD_FLAG_NO_HOLE, 0, 10)), "EINVAL");
    // The refused write payload was skipped: the next request parses fine.
    await c.write(end - 4, Buffer.from([1, 2, 3, 4]));
    assert.deepEqual(await c.read(end - 4, 4), Buffer.from([1, 2, 3, 4]));
    await c.close();
  });

  test("a malformed request closes only that connection", async () => {
    const good = await NbdClient.connect(tcp, "disk0");
    const h = await NbdHandshake.open(tcp);
    await h.infoOrGo(NBD.NBD_OPT_GO, "disk0", []);
    const closed = new Promise<void>((r) => h.socket.once("close", () => r()));
    h.socket.write(Buffer.alloc(NBD.NBD_REQUEST_SIZE, 0xee));
    await closed;
    // A bad option magic during the handshake too.
    const h2 = await NbdHandshake.open(tcp);
    const closed2 = new Promise<void>((r) => h2.socket.once("close", () => r()));
    h2.socket.write(Buffer.alloc(16, 0x41));
    await closed2;
    await good.write(0, Buffer.from("still alive"));
    assert.equal((await good.read(0, 11)).toString(), "still alive");
    await good.close();
  });

  test("blocked writes are refused with EPERM; reads and flush still work", async () => {
    const c = await NbdClient.connect(tcp, "rec");
    await c.write(0, Buffer.from("before"));
    rec.blockedReason = "writes stopped for failover";
    try {
      await assert.rejects(c.write(0, Buffer.from("after!")), (e: NbdCommandError) => e.code === "EPERM");
      await assert.rejects(c.writeZeroes(0, 10), (e: NbdCommandError) => e.code === "EPERM");
      await assert.rejects(c.trim(0, 10), (e: NbdCommandError) => e.code === "EPERM");
      await c.flush();
      assert.equal((await c.read(0, 6)).toString(), "before");
    } finally {
      rec.blockedReason = undefined;
    }
    await c.close();
  });

  test("export errors map to NBD errnos", async () => {
    const c = await NbdClient.connect(tcp, "rec");
    rec.failNext = new NbdExportError("full", NBD.NBD_ENOSPC);
    await assert.rejects(c.write(0, Buffer.from("x")), (e: NbdCommandError) => e.code === "ENOSPC");
    rec.failNext = new Error("disk on fire");
    await assert.rejects(c.write(0, Buffer.from("x")), (e: NbdCommandError) => e.code === "EIO");
    await c.write(0, Buffer.from("y"));
    await c.close();
  });

  test("pipelined writes are applied in arrival order", async () => {
    const c = await NbdClient.connect(tcp, "rec");
    rec.log.length = 0;
    const n = 300;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      // All overlap at offset 8192; the last one must win.
      pending.push(c.write(8192 + (i % 3) * 512, Buffer.alloc(4096, i & 0xff)));
    }
    assert.ok(c.inFlight > 1, "requests were really pipelined");
    await Promise.all(pending);
    assert.deepEqual(
      rec.log.map((w) => w.first),
      Array.from({ length: n }, (_, i) => i & 0xff),
    );
    const last = n - 1;
    const tail = await c.read(8192 + (last % 3) * 512, 4096);
    assert.ok(tail.every((b) => b === (last & 0xff)));
    // Mixed pipelined reads and writes: each read sees the writes before it.
    const r = [c.write(0, Buffer.alloc(512, 1)), c.read(0, 512), c.write(0, Buffer.alloc(512, 2)), c.read(0, 512)];
    const [, r1, , r2] = await Promise.all(r);
    assert.equal((r1 as Buffer)[0], 1);
    assert.equal((r2 as Buffer)[0], 2);
    await c.close();
  });

  test("large pipelined transfers over the unix socket", async () => {
    const c = await NbdClient.connect({ socketPath: path.join(dir, "nbd.sock") }, "disk0");
    const chunk = 4 * MiB;
    const bufs = [0, 1].map((k) => Buffer.alloc(chunk, 0x30 + k));
    await Promise.all(bufs.map((b, k) => c.write(k * chunk, b)));
    const back = await Promise.all([0, 1].map((k) => c.read(k * chunk, chunk)));
    assert.deepEqual(back, bufs);
    await c.close();
  });

  test("URIs and stats", () => {
    assert.equal(server.uri("disk0"), `nbd://127.0.0.1:${server.tcpPort}/disk0`);
    assert.equal(server.unixUri("disk0"), `nbd+unix:///disk0?socket=${path.join(dir, "nbd.sock")}`);
    const s = server.stats();
    assert.ok(s.writes > 300 && s.reads > 5 && s.bytesWritten > 8 * MiB, JSON.stringify(s));
  });

  test("removeExport closes its connections; stop closes the rest cleanly", async () => {
    const extra = new FileExport({ name: "extra", path: path.join(dir, "extra.img"), createSize: MiB });
    server.addExport(extra);
    const c = await NbdClient.connect(tcp, "extra");
    await c.write(0, Buffer.from("x"));
    server.removeExport("extra");
    await assert.rejects(async () => {
      for (;;) await c.read(0, 1);
    });
    await assert.rejects(NbdClient.connect(tcp, "extra"), NbdOptionError);
    extra.close();

    const s2 = new NbdServer({ exports: [disk] });
    await s2.start();
    const c2 = await NbdClient.connect({ port: s2.tcpPort }, "");
    assert.equal(c2.size, 8 * MiB); // the empty name selects the sole export
    await c2.flush();
    await s2.stop();
    await assert.rejects(c2.read(0, 1));
    assert.equal(s2.stats().connections, 0);
  });
});
