import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, type TestContext } from "vitest";
import { NbdClient } from "../common/nbd/index.js";
import { applyRecords, type PageTarget } from "../common/replica/index.js";
import { type BlobStore, createBlobStore } from "../common/storage/index.js";
import { LocalMachine, PageBlobDisk, runSync } from "../mobility-agent/index.js";
import { NbdServer } from "../mobility-agent/nbd/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import { ASSIGNMENT } from "./support/fake-process-server.js";
import { test } from "./support/fixtures.js";
import { seededInts } from "../common/random/index.js";
import { KiB, logger, MiB, pattern } from "./support/local-machine.js";

const TIMEOUT = { timeout: 30_000 };
const blobName = (i: number) => `machines/m1/failover/disk-${i}`;

async function directoryStore(directory: string): Promise<BlobStore> {
  const store = createBlobStore({ kind: "directory", directory, fsync: false });
  await store.init();
  return store;
}

/** The store with chosen calls held back: `hold` returns a promise the call waits for first. */
function heldBack(store: BlobStore, hold: (method: string, name: string) => Promise<void> | undefined): BlobStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        const wait = hold(String(prop), String(args[0]));
        if (wait) await wait;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Failed-over page blobs and a machine on them, as the Azure agent opens them. */
async function openAzureMachine(dataDir: string, store: BlobStore, sizes: number[], memoryBudgetBytes = 64 * MiB): Promise<LocalMachine> {
  const backends: PageBlobDisk[] = [];
  for (const [i, size] of sizes.entries()) {
    await store.createPageBlob(blobName(i), size);
    backends.push(await PageBlobDisk.open(store, blobName(i)));
  }
  const machine = LocalMachine.open({ dataDir, backends, memoryBudgetBytes, logger });
  machine.protect(ASSIGNMENT);
  return machine;
}

function queued(machine: LocalMachine): WriteRecord[] {
  return machine.capture.nextBatch(1024 * MiB, 1024 * MiB) ?? [];
}

/** A replica image in memory, written the way the process server's applier writes page blobs. */
class BufferTarget implements PageTarget {
  constructor(readonly image: Buffer) {}
  async readPages(offset: number, length: number): Promise<Buffer> {
    return Buffer.from(this.image.subarray(offset, offset + length));
  }
  async writePages(offset: number, data: Buffer): Promise<void> {
    data.copy(this.image, offset);
  }
  async clearPages(offset: number, length: number): Promise<void> {
    this.image.fill(0, offset, offset + length);
  }
}

async function replay(base: Buffer, records: WriteRecord[], diskIndex: number): Promise<Buffer> {
  const target = new BufferTarget(Buffer.from(base));
  const sorted = [...records].sort((a, b) => a.sequence - b.sequence);
  await applyRecords(target, sorted, diskIndex, base.length);
  return target.image;
}

/** Deterministic pseudo-random numbers for reproducible write mixes. */

interface Op {
  offset: number;
  data?: Buffer;
  zeroLength?: number;
}

/** Unaligned, overlapping writes (some WRITE_ZEROES) packed into the first `span` bytes. */
function unalignedOps(count: number, span: number, seed: number): Op[] {
  const rnd = seededInts(seed);
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const length = 1 + rnd(20 * KiB);
    const offset = rnd(span - length);
    if (rnd(6) === 0) ops.push({ offset, zeroLength: length });
    else ops.push({ offset, data: randomBytes(length) });
  }
  return ops;
}

function send(client: NbdClient, op: Op): Promise<void> {
  return op.data ? client.write(op.offset, op.data) : client.writeZeroes(op.offset, op.zeroLength!);
}

function applyTo(image: Buffer, op: Op): void {
  if (op.data) op.data.copy(image, op.offset);
  else image.fill(0, op.offset, op.offset + op.zeroLength!);
}

/** An NBD server on the machine's exports, stopped (clients dropped) when the test ends. */
async function serve(onTestFinished: TestContext["onTestFinished"], machine: LocalMachine): Promise<(disk: number) => Promise<NbdClient>> {
  const nbd = new NbdServer({ exports: machine.exports, host: "127.0.0.1", port: 0, logger });
  await nbd.start();
  onTestFinished(() => nbd.stop());
  return (disk) => NbdClient.connect({ host: "127.0.0.1", port: nbd.tcpPort }, `disk${disk}`);
}

// ---- a process server in memory ---------------------------------------------------------------

// ---- tests ------------------------------------------------------------------------------------

describe("azure agent page-blob disks", () => {
  test("unaligned, overlapping NBD writes read back equal to a reference; capture order is blob order", TIMEOUT, async ({ tempDir, onTestFinished }) => {
    const size = 2 * MiB;
    const store = await directoryStore(tempDir());
    const machine = await openAzureMachine(tempDir(), store, [size]);
    const connect = await serve(onTestFinished, machine);
    const [a, b] = [await connect(0), await connect(0)];

    // One connection, pipelined: the server runs its requests in order, so the reference is exact.
    const reference = Buffer.alloc(size);
    const ops = unalignedOps(300, 256 * KiB, 1);
    await Promise.all(ops.map((op) => send(a, op)));
    for (const op of ops) applyTo(reference, op);
    assert.ok((await a.read(0, size)).equals(reference), "NBD read-back equals the reference");
    assert.ok((await store.readPages(blobName(0), 0, size)).equals(reference), "the page blob equals the reference");
    const first = queued(machine);
    assert.equal(first.length, ops.length);
    assert.ok((await replay(Buffer.alloc(size), first, 0)).equals(reference), "captured records replay to the same disk");

    // Two connections racing over the same bytes: whatever order the disk queue chose, the
    // sequence numbers tell the same story.
    const racing = [unalignedOps(150, 128 * KiB, 2), unalignedOps(150, 128 * KiB, 3)];
    await Promise.all([Promise.all(racing[0]!.map((op) => send(a, op))), Promise.all(racing[1]!.map((op) => send(b, op)))]);
    const final = await store.readPages(blobName(0), 0, size);
    assert.ok((await replay(reference, queued(machine), 0)).equals(final), "records in sequence order replay to the blob");
    await b.flush();
    assert.ok((await b.read(0, size)).equals(final));

    await a.close();
    await b.close();
    await machine.settle();
    machine.close();
  });

  test("sequence numbers follow execution order across two disks", TIMEOUT, async ({ tempDir, onTestFinished }) => {
    const base = await directoryStore(tempDir());
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    onTestFinished(() => release());
    let held = false;
    // Disk 0's first page write waits for the gate; everything else runs at once.
    const store = heldBack(base, (method, name) => {
      if (method !== "writePages" || name !== blobName(0) || held) return undefined;
      held = true;
      return gate;
    });
    const machine = await openAzureMachine(tempDir(), store, [MiB, MiB]);
    const [d0, d1] = machine.exports;
    const done: Array<void | Promise<void>> = [];
    done.push(d0!.write(0, pattern(4 * KiB, 1), false)); // held
    done.push(d1!.write(0, pattern(4 * KiB, 2), false));
    done.push(d0!.write(512, pattern(1000, 3), false)); // queued behind the held write
    done.push(d1!.writeZeroes(100, 300, false)); // unaligned: read-modify-write inside the queue
    // A resync's block read, queued behind disk 0's writes: it is sequenced when it runs.
    const blockRead = machine.disks[0]!.readThen(0, 64 * KiB, (data) => machine.capture.recordBlock(0, 0, data, false));
    await Promise.all([done[1], done[3]]);
    assert.deepEqual(
      queued(machine).map((r) => [r.sequence, r.diskIndex, r.offset]),
      [
        [1, 1, 0],
        [2, 1, 100],
      ],
      "disk 1 finished first, so it numbered first",
    );
    release();
    await Promise.all([...done, blockRead]);
    const rest = queued(machine);
    assert.deepEqual(
      rest.map((r) => [r.sequence, r.diskIndex, r.kind, r.offset, r.length]),
      [
        [3, 0, WriteKind.WRITE_KIND_DATA, 0, 4 * KiB],
        [4, 0, WriteKind.WRITE_KIND_DATA, 512, 1000],
        [5, 0, WriteKind.WRITE_KIND_DATA, 0, 64 * KiB],
      ],
    );
    const expected = Buffer.alloc(64 * KiB);
    pattern(4 * KiB, 1).copy(expected, 0);
    pattern(1000, 3).copy(expected, 512);
    assert.ok(rest[2]!.data.equals(expected), "the block read saw both earlier writes");
    const disk1 = await store.readPages(blobName(1), 0, 4 * KiB);
    const want1 = pattern(4 * KiB, 2).fill(0, 100, 400);
    assert.ok(disk1.equals(want1));
    await machine.settle();
    machine.close();
  });

  test("a resync against the replica's checksums sends only the differing blocks", TIMEOUT, async ({ tempDir, fakeProcessServer }) => {
    const block = 64 * KiB;
    const size = 8 * block;
    const store = await directoryStore(tempDir());
    const machine = await openAzureMachine(tempDir(), store, [size]);
    const disk = Buffer.alloc(size);
    for (const i of [0, 1, 3, 4]) pattern(block, i).copy(disk, i * block);
    await store.writePages(blobName(0), 0, disk);
    const replica = Buffer.from(disk);
    pattern(block, 91).copy(replica, 1 * block); // differs
    replica.fill(0, 3 * block, 4 * block); // zero on the replica only
    replica[4 * block + 7] ^= 0xff; // one byte off
    pattern(block, 96).copy(replica, 6 * block); // zero on the disk only
    const { ps, replication } = fakeProcessServer(machine, [replica]);
    await replication.assign("fake:1");
    const result = await runSync({ capture: machine.capture, port: ps, machineId: "m1", timeUnitMs: 5, logger }, { mode: "resync", blockSize: block });
    assert.equal(result.blocksCompared, 8);
    assert.deepEqual(
      ps.received.map((r) => [r.kind, r.offset / block]),
      [
        [WriteKind.WRITE_KIND_DATA, 1],
        [WriteKind.WRITE_KIND_DATA, 3],
        [WriteKind.WRITE_KIND_DATA, 4],
        [WriteKind.WRITE_KIND_ZERO, 6],
        // The sync ends by marking the disk's base: the process server takes a point there.
        [WriteKind.WRITE_KIND_BASE, 0],
      ],
    );
    assert.equal(result.endSequence, ps.received.at(-1)!.sequence);
    assert.equal(result.bytesSent, 2 * block + 4 * KiB, "the byte off in block 4 costs one 4 KiB page, not the block");
    assert.ok(ps.replicas[0]!.equals(disk), "the replica equals the page blob");
    await replication.stop();
    await machine.settle();
    machine.close();
  });

  test("NBD writes racing a resync still converge to the page blob", TIMEOUT, async ({ tempDir, onTestFinished, fakeProcessServer }) => {
    const block = 64 * KiB;
    const size = 2 * MiB;
    const base = await directoryStore(tempDir());
    // Every blob call yields a few milliseconds, so queued reads and writes interleave.
    const store = heldBack(base, () => new Promise((r) => setTimeout(r, 1)));
    const machine = await openAzureMachine(tempDir(), store, [size, MiB]);
    for (const [i, s] of [size, MiB].entries()) {
      for (let off = 0; off < s; off += 3 * block) await base.writePages(blobName(i), off, pattern(block, off / block + i));
    }
    const replicas = [await base.readPages(blobName(0), 0, size), await base.readPages(blobName(1), 0, MiB)];
    // The replica missed some writes and has some of its own.
    replicas[0]!.fill(7, 5 * block, 9 * block);
    replicas[1]!.fill(0, 0, 2 * block);
    const initial = replicas.map((r) => Buffer.from(r));
    const { ps, replication } = fakeProcessServer(machine, replicas);
    await replication.assign("fake:1");

    const connect = await serve(onTestFinished, machine);
    const clients = [await connect(0), await connect(1), await connect(0)];
    let syncing = true;
    let writes = 0;
    const writers = clients.map(async (client, c) => {
      const rnd = seededInts(10 + c);
      while (syncing || writes < 30) {
        const length = 1 + rnd(12 * KiB);
        const offset = rnd(client.size - length);
        await (rnd(5) === 0 ? client.writeZeroes(offset, length) : client.write(offset, randomBytes(length)));
        writes++;
      }
    });
    let writesDuringSync = 0;
    const result = await runSync({ capture: machine.capture, port: ps, machineId: "m1", timeUnitMs: 5, logger }, { mode: "resync", blockSize: block }).finally(() => {
      syncing = false;
      writesDuringSync = writes;
    });
    await Promise.all(writers);
    assert.ok(writesDuringSync > 0, "writes raced the compare");
    for (const c of clients) await c.close();
    await machine.settle();
    await machine.capture.whenAllDurable();
    assert.ok(result.blocksSent > 0 && result.blocksSent < result.blocksCompared, `${result.blocksSent} of ${result.blocksCompared} blocks sent`);

    for (const [i, s] of [size, MiB].entries()) {
      const final = await base.readPages(blobName(i), 0, s);
      assert.ok(ps.replicas[i]!.equals(final), `disk ${i}: replica equals the page blob`);
      const replayed = await replay(initial[i]!, ps.received, i);
      assert.ok(replayed.equals(final), `disk ${i}: the records replayed onto the old replica equal the page blob`);
    }
    await replication.stop();
    machine.close();
  });
});
