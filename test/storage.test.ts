import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type AzuriteHandle, azuriteConnectionString, startAzurite } from "../common/azurite/index.js";
import {
  type BlobStore,
  createBlobStore,
  isRecoverableStorageError,
  type PageRange,
  StorageError,
  StorageNotFoundError,
  StorageUnavailableError,
} from "../common/storage/index.js";
import { seededInts } from "../common/random/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

interface Backend {
  name: string;
  open(): Promise<BlobStore>;
  close(): Promise<void>;
}

function azureBackend(): Backend {
  let dir = "";
  let azurite: AzuriteHandle | undefined;
  return {
    name: "azure (Azurite)",
    async open() {
      dir = await mkdtemp(join(tmpdir(), "srlab-azurite-"));
      azurite = await startAzurite({ dataDir: dir, blobPort: 0 });
      return createBlobStore({ kind: "azure", connectionString: azurite.connectionString, container: "storage-test" });
    },
    async close() {
      await azurite?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function directoryBackend(): Backend {
  let dir = "";
  return {
    name: "directory",
    async open() {
      dir = await mkdtemp(join(tmpdir(), "srlab-dirstore-"));
      return createBlobStore({ kind: "directory", directory: join(dir, "store") });
    },
    async close() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Shared behavioural suite: both backends must be indistinguishable to callers. */
function behaviouralSuite(backend: Backend): void {
  describe(`BlobStore: ${backend.name}`, () => {
    let store: BlobStore;
    beforeAll(async () => {
      store = await backend.open();
      await store.init();
      await store.init(); // idempotent
    });
    afterAll(async () => {
      await store?.close();
      await backend.close();
    });

    it("puts, gets, lists and deletes objects", async () => {
      const a = randomBytes(1000);
      await store.putObject("logs/m1/000002.seg", a);
      await store.putObject("logs/m1/000001.seg", Buffer.from("one"));
      await store.putObject("logs/m2/000001.seg", Buffer.from("other machine"));
      await store.putObject("state.json", Buffer.from("{}"));
      await store.putObject("logs/m1/000001.seg", Buffer.from("one, rewritten")); // overwrite
      await store.createPageBlob("logs/m1/disk-not-an-object", 4096);

      assert.equal(sha(await store.getObject("logs/m1/000002.seg")), sha(a));
      assert.equal((await store.getObject("logs/m1/000001.seg")).toString(), "one, rewritten");
      assert.equal(await store.objectExists("state.json"), true);
      assert.equal(await store.objectExists("nope.json"), false);

      const listed = await store.listObjects("logs/m1/");
      assert.deepEqual(
        listed.map((o) => o.name),
        ["logs/m1/000001.seg", "logs/m1/000002.seg"],
      );
      assert.equal(listed[1]!.size, 1000);
      assert.ok(listed[0]!.lastModified instanceof Date);
      assert.deepEqual(
        (await store.listObjects("logs/m")).map((o) => o.name),
        ["logs/m1/000001.seg", "logs/m1/000002.seg", "logs/m2/000001.seg"],
      );
      assert.deepEqual(await store.listObjects("missing/"), []);

      await store.deleteObject("logs/m1/000001.seg");
      await store.deleteObject("logs/m1/000001.seg"); // no error when missing
      await assert.rejects(store.getObject("logs/m1/000001.seg"), StorageNotFoundError);
      assert.deepEqual(
        (await store.listObjects("logs/m1/")).map((o) => o.name),
        ["logs/m1/000002.seg"],
      );
      await store.deletePageBlob("logs/m1/disk-not-an-object");
    });

    it("rejects bad names", async () => {
      await assert.rejects(store.putObject("../escape", Buffer.from("x")), StorageError);
      await assert.rejects(store.putObject("", Buffer.from("x")), StorageError);
    });

    it("tracks ranges exactly under many small overlapping writes and clears", async () => {
      const name = "replicas/fuzz";
      const pages = 2048;
      await store.createPageBlob(name, pages * 512);
      const model = Buffer.alloc(pages * 512);
      const written = new Uint8Array(pages);
      const rand = seededInts(42);
      for (let i = 0; i < 300; i++) {
        const page = rand(pages);
        const count = Math.min(1 + rand(16), pages - page);
        if (rand(10) < 7) {
          const data = randomBytes(count * 512);
          await store.writePages(name, page * 512, data);
          data.copy(model, page * 512);
          written.fill(1, page, page + count);
        } else {
          await store.clearPages(name, page * 512, count * 512);
          model.fill(0, page * 512, (page + count) * 512);
          written.fill(0, page, page + count);
        }
      }
      const expected: PageRange[] = [];
      for (let p = 0; p < pages; p++) {
        if (!written[p]) continue;
        const last = expected.at(-1);
        if (last && last.offset + last.length === p * 512) last.length += 512;
        else expected.push({ offset: p * 512, length: 512 });
      }
      assert.deepEqual(await store.getPageRanges(name), expected);
      assert.equal(sha(await store.readPages(name, 0, pages * 512)), sha(model));
      await store.deletePageBlob(name);
    });

    describe("page blobs", () => {
      const SIZE = 16 * MiB;
      const disk = "replicas/m1/disk-0";
      const model = Buffer.alloc(SIZE);
      let snapModel: Buffer;
      let snapRanges: PageRange[];
      let snap1 = "";
      let snap2 = "";

      const write = async (offset: number, data: Buffer): Promise<void> => {
        await store.writePages(disk, offset, data);
        data.copy(model, offset);
      };

      it("creates idempotently and validates sizes", async () => {
        assert.equal(await store.pageBlobSize(disk), undefined);
        await store.createPageBlob(disk, SIZE);
        await store.createPageBlob(disk, SIZE); // idempotent
        assert.equal(await store.pageBlobSize(disk), SIZE);
        await assert.rejects(store.createPageBlob(disk, SIZE + 512), StorageError);
        await assert.rejects(store.createPageBlob("replicas/odd", 1000), StorageError);
        assert.deepEqual(await store.getPageRanges(disk), []);
        assert.equal(sha(await store.readPages(disk, 0, SIZE)), sha(model)); // all zeros
      });

      it("rejects unaligned writes and clears", async () => {
        await assert.rejects(store.writePages(disk, 100, Buffer.alloc(512)), StorageError);
        await assert.rejects(store.writePages(disk, 0, Buffer.alloc(100)), StorageError);
        await assert.rejects(store.clearPages(disk, 512, 100), StorageError);
        await assert.rejects(store.writePages("replicas/missing", 0, Buffer.alloc(512)), StorageNotFoundError);
      });

      it("writes and reads back byte-exact, including >4 MiB writes", async () => {
        await write(0, randomBytes(4 * KiB));
        await write(4 * KiB, randomBytes(512)); // adjacent: merges with the first
        await write(1 * MiB, randomBytes(5 * MiB + 512)); // split into 4 MiB calls
        await write(3 * MiB, randomBytes(8 * KiB)); // overwrite inside
        await write(SIZE - 1024, randomBytes(1024)); // last pages
        assert.equal(sha(await store.readPages(disk, 0, SIZE)), sha(model));
        // Unaligned reads anywhere inside the blob.
        assert.deepEqual(await store.readPages(disk, 3, 1000), model.subarray(3, 1003));
        assert.deepEqual(await store.readPages(disk, 4 * MiB - 7, 5 * MiB), model.subarray(4 * MiB - 7, 9 * MiB - 7));
        assert.deepEqual(await store.readPages(disk, SIZE - 10, 10), model.subarray(SIZE - 10));
        await assert.rejects(store.readPages(disk, SIZE - 512, 1024), StorageError);
        await assert.rejects(store.readPages(disk, 0, -1), StorageError);
        // Into a reused buffer that holds other bytes (and across a 4 MiB call boundary): exactly the blob's.
        const into = Buffer.alloc(5 * MiB + 512, 0xa5);
        await store.readPagesInto(disk, 4 * MiB - 1024, into);
        assert.equal(sha(into), sha(model.subarray(4 * MiB - 1024, 9 * MiB - 512)));
        await assert.rejects(store.readPagesInto(disk, SIZE - 512, Buffer.alloc(1024)), StorageError);
        await assert.rejects(store.readPages("replicas/missing", 0, 512), StorageNotFoundError);
        assert.deepEqual(await store.getPageRanges(disk), [
          { offset: 0, length: 4 * KiB + 512 },
          { offset: 1 * MiB, length: 5 * MiB + 512 },
          { offset: SIZE - 1024, length: 1024 },
        ]);
      });

      it("clears pages and reports merged ranges", async () => {
        await store.clearPages(disk, 2 * MiB, 1 * MiB);
        model.fill(0, 2 * MiB, 3 * MiB);
        await store.clearPages(disk, 8 * MiB, 1 * MiB); // never written: no effect
        assert.deepEqual(await store.getPageRanges(disk), [
          { offset: 0, length: 4 * KiB + 512 },
          { offset: 1 * MiB, length: 1 * MiB },
          { offset: 3 * MiB, length: 3 * MiB + 512 },
          { offset: SIZE - 1024, length: 1024 },
        ]);
        assert.equal(sha(await store.readPages(disk, 0, SIZE)), sha(model));
      });

      it("snapshots isolate later writes", async () => {
        snap1 = await store.snapshotPageBlob(disk);
        snapModel = Buffer.from(model);
        snapRanges = await store.getPageRanges(disk);
        await write(0, randomBytes(512));
        await write(10 * MiB, randomBytes(64 * KiB));
        await store.clearPages(disk, 1 * MiB, 512);
        model.fill(0, 1 * MiB, 1 * MiB + 512);

        assert.equal(sha(await store.readPages(disk, 0, SIZE, snap1)), sha(snapModel));
        assert.deepEqual(await store.getPageRanges(disk, snap1), snapRanges);
        assert.equal(sha(await store.readPages(disk, 0, SIZE)), sha(model));
        assert.notEqual(sha(model), sha(snapModel));

        snap2 = await store.snapshotPageBlob(disk);
        assert.deepEqual(await store.listSnapshots(disk), [snap1, snap2]);
      });

      it("copies a snapshot (written ranges only) over an existing target", async () => {
        const target = "failover/m1/disk-0";
        await store.createPageBlob(target, 1 * MiB); // different size, stale content
        await store.writePages(target, 0, randomBytes(64 * KiB));
        const progress: Array<[number, number]> = [];
        await store.copyPageBlob(disk, target, { snapshot: snap1, onProgress: (d, t) => progress.push([d, t]) });

        assert.equal(await store.pageBlobSize(target), SIZE);
        assert.equal(sha(await store.readPages(target, 0, SIZE)), sha(snapModel));
        assert.deepEqual(await store.getPageRanges(target), snapRanges);
        const total = snapRanges.reduce((s, r) => s + r.length, 0);
        assert.deepEqual(progress.at(-1), [total, total]);

        // Copy of the live blob.
        await store.copyPageBlob(disk, "failover/m1/disk-0-live");
        assert.equal(sha(await store.readPages("failover/m1/disk-0-live", 0, SIZE)), sha(model));
      });

      it("deletes snapshots and blobs (with their snapshots)", async () => {
        await store.deleteSnapshot(disk, snap2);
        assert.deepEqual(await store.listSnapshots(disk), [snap1]);
        await assert.rejects(store.readPages(disk, 0, 512, snap2), StorageNotFoundError);

        await store.deletePageBlob(disk);
        await store.deletePageBlob(disk); // no error when missing
        assert.equal(await store.pageBlobSize(disk), undefined);
        assert.deepEqual(await store.listSnapshots(disk), []);
        await assert.rejects(store.readPages(disk, 0, 512, snap1), StorageNotFoundError);
        await assert.rejects(store.getPageRanges(disk), StorageNotFoundError);
        // Copies are independent of the deleted source.
        assert.equal(sha(await store.readPages("failover/m1/disk-0", 0, SIZE)), sha(snapModel));
        await store.deletePageBlob("failover/m1/disk-0");
        await store.deletePageBlob("failover/m1/disk-0-live");
      });
    });
  });
}

behaviouralSuite(directoryBackend());
behaviouralSuite(azureBackend());

describe("azure backend failures", () => {
  it("raises StorageUnavailableError when the endpoint is unreachable", async () => {
    // A port that was free a moment ago: connection refused, quickly.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, "127.0.0.1", () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const store = createBlobStore({ kind: "azure", connectionString: azuriteConnectionString(port), container: "c", maxTries: 1 });
    for (const op of [() => store.putObject("x", Buffer.from("x")), () => store.getObject("x"), () => store.pageBlobSize("d")]) {
      await assert.rejects(op(), (err: unknown) => {
        assert.ok(err instanceof StorageUnavailableError, `got ${String(err)}`);
        assert.equal(isRecoverableStorageError(err), true);
        return true;
      });
    }
  });
});
