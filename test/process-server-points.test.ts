import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "vitest";
import { blockDigest, pageDigests } from "../common/blockhash/index.js";
import { bearerMetadata } from "../common/grpc/index.js";
import { pointsPrefix, replicaBlobName } from "../common/storage-layout/index.js";
import type { PointDocument } from "../process-server/index.js";
import { ChecksumAlgorithm, WriteKind } from "../proto/index.js";
import { blank, DISK_SIZE, DISKS, everySecond, replicaHash, sha, useProcessServer, Workload } from "./support/process-server-harness.js";
import { waitUntil } from "./support/wait.js";

// What the process server makes of the replica: recovery points on tags, bases and the policy's
// cadence, block checksums, and retention.
describe("process server points and replica", () => {
  const h = useProcessServer();

  it("turns a TAG into an app-consistent point whose snapshots equal the images at the tag", async () => {
    const w = new Workload(5);
    const agent = h.agent(h.cs.agentCredential("m6"));
    await agent.open("m6");
    await agent.send([...w.writes(20), ...w.base()]);
    const baseSequence = w.sequence;
    const atBase = w.images.map((img) => sha(img));
    await agent.send(w.writes(20));
    const tag = w.tag("nightly");
    const atTag = w.images.map((img) => sha(img));
    await agent.send([tag, ...w.writes(40)]);
    agent.end();
    await h.drain("m6");

    const docs = await Promise.all(
      (await h.store.listObjects(pointsPrefix("m6"))).map(async (o) => JSON.parse((await h.store.getObject(o.name)).toString()) as PointDocument),
    );
    docs.sort((a, b) => a.sequence - b.sequence);
    assert.equal(docs.length, 2);
    // The end of the initial copy (the BASE records, one per disk) is the machine's first point.
    const base = docs[0]!;
    assert.equal(base.type, "crash-consistent");
    assert.equal(base.base, true);
    assert.equal(base.sequence, baseSequence);
    assert.equal(base.disksCovered, 2);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m6", d.index, base.snapshots[String(d.index)]), atBase[d.index], `disk ${d.index} at the base`);
    const doc = docs[1]!;
    assert.equal(doc.type, "app-consistent");
    assert.equal(doc.sequence, tag.sequence);
    assert.equal(doc.tagName, "nightly");
    assert.equal(doc.disksCovered, 2);
    for (const d of DISKS) {
      assert.equal(await replicaHash(h.store, "m6", d.index, doc.snapshots[String(d.index)]), atTag[d.index], `disk ${d.index} at the tag`);
      assert.equal(await replicaHash(h.store, "m6", d.index), sha(w.images[d.index]!), `disk ${d.index} latest`);
    }
    await waitUntil("point reported to the CS", () => h.cs.points.some((p) => p.recoveryPointId === doc.recoveryPointId));
  });

  it("marks a point taken while earlier writes carried bytes read after it (metadata mode)", async () => {
    const w = new Workload(8);
    const agent = h.agent(h.cs.agentCredential("mmeta"));
    await agent.open("mmeta");
    const first = w.writes(5);
    // Write 3 went out in metadata mode: its bytes were read when the agent was at sequence 8.
    first[2] = { ...first[2]!, readAtSequence: 8 };
    const early = w.tag("early");
    const middle = w.writes(3);
    const late = w.tag("late");
    await agent.send([...first, early, ...middle, late]);
    agent.end();
    await h.drain("mmeta");

    const docs = await Promise.all(
      (await h.store.listObjects(pointsPrefix("mmeta"))).map(async (o) => JSON.parse((await h.store.getObject(o.name)).toString()) as PointDocument),
    );
    const byTag = new Map(docs.map((d) => [d.tagName, d]));
    assert.equal(byTag.get("early")?.metadataMode, true, "tag 6 precedes the read at 8");
    assert.ok(!byTag.get("late")?.metadataMode, "tag 10 follows every read");
    await waitUntil("points reported to the CS", () => h.cs.points.filter((p) => p.machineId === "mmeta").length === 2);
    assert.deepEqual(
      h.cs.points.filter((p) => p.machineId === "mmeta").map((p) => [p.tagName, p.metadataMode]),
      [
        ["early", true],
        ["late", false],
      ],
    );
  });

  it("answers XXH3 checksums from its replica checksum map across restarts, and never trusts a stale map", { timeout: 180_000 }, async () => {
    const request = { machineId: "m21", diskIndex: 0, blockSize: 64 * 1024, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128, pageSize: 4096 };
    const checksums = () =>
      new Promise<Map<number, string>>((resolve, reject) => {
        const got = new Map<number, string>();
        const call = h.client.getBlockChecksums(request, bearerMetadata(h.cs.agentCredential("m21")));
        call.on("data", (m: { checksums: { blockIndex: number; digest: Buffer; pageDigests: Buffer }[] }) => {
          for (const c of m.checksums) if (c.digest.length > 0) got.set(c.blockIndex, `${c.digest.toString("hex")}/${c.pageDigests.toString("hex")}`);
        });
        call.on("end", () => resolve(got));
        call.on("error", reject);
      });
    const expected = (image: Buffer) => {
      const out = new Map<number, string>();
      for (let b = 0; b < DISK_SIZE / request.blockSize; b++) {
        const block = image.subarray(b * request.blockSize, (b + 1) * request.blockSize);
        const digest = blockDigest(request.algorithm, block);
        if (digest.length > 0) out.set(b, `${digest.toString("hex")}/${pageDigests(request.algorithm, block, request.pageSize).toString("hex")}`);
      }
      return out;
    };
    const w = new Workload(21);
    const send = async (count: number) => {
      const agent = h.agent(h.cs.agentCredential("m21"));
      await agent.open("m21");
      await agent.send(w.writes(count));
      agent.end();
      await h.drain("m21");
    };
    await send(40);
    assert.deepEqual(await checksums(), expected(w.images[0]!));

    // A clean stop persists the map beside the machine state; the restarted server trusts it.
    await h.restart();
    const mapFile = join(h.root, "ps", "checksum-maps", "m21", "disk-0.xxh3map");
    const persisted = await readFile(mapFile);
    const blob = replicaBlobName("m21", 0);
    const original = await h.store.readPages(blob, 0, 65536);
    // Bytes changed behind the applier's back are not seen: the answer came from the map, not a read.
    await h.store.writePages(blob, 0, randomBytes(65536));
    assert.deepEqual(await checksums(), expected(w.images[0]!));
    await h.store.writePages(blob, 0, original);

    // More writes, then the file from before them comes back, as after a crash that lost the
    // last save: it covers an older sequence, so the server rebuilds from storage instead.
    await send(40);
    await h.restart({}, () => writeFile(mapFile, persisted));
    assert.deepEqual(await checksums(), expected(w.images[0]!));
  });

  it("serves block checksums of the replica after applying what it holds", async () => {
    const w = new Workload(6);
    const agent = h.agent(h.cs.agentCredential("m7"));
    await agent.open("m7");
    const records = w.writes(30);
    // A written block that ends up all zero.
    records.push({ ...blank(++w.sequence), kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: 65536, data: randomBytes(65536) });
    records.push({ ...blank(++w.sequence), kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: 65536, data: Buffer.alloc(65536) });
    w.images[0]!.fill(0, 0, 65536);
    await agent.send(records);
    agent.end();

    const blockSize = 64 * 1024;
    const got = new Map<number, string>();
    let total = 0;
    await new Promise<void>((resolve, reject) => {
      const call = h.client.getBlockChecksums({ machineId: "m7", diskIndex: 0, blockSize, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_UNSPECIFIED, pageSize: 0 }, bearerMetadata(h.cs.agentCredential("m7")));
      call.on("data", (m: { checksums: { blockIndex: number; digest: Buffer }[]; totalBlocks: number }) => {
        total = m.totalBlocks;
        assert.ok(m.checksums.length <= 1024);
        for (const c of m.checksums) got.set(c.blockIndex, c.digest.toString("hex"));
      });
      call.on("end", resolve);
      call.on("error", reject);
    });
    assert.equal(total, DISK_SIZE / blockSize);
    assert.equal(got.get(0), "", "a written all-zero block has an empty checksum");
    for (let b = 0; b < total; b++) {
      const block = w.images[0]!.subarray(b * blockSize, (b + 1) * blockSize);
      const expected = block.every((x) => x === 0) ? "" : sha(block);
      assert.equal(got.get(b) ?? "", expected, `block ${b}`);
    }
  });

  it("makes crash-consistent points on the policy's cadence and reports heartbeats", async () => {
    const policy = everySecond("fast", 3600);
    const w = new Workload(8);
    const agent = h.agent(h.cs.agentCredential("m10"));
    await agent.open("m10");
    await agent.send([...w.writes(10), ...w.base(), ...w.writes(8)]);
    await h.drain("m10");
    await h.assign("c1", "m10", policy);
    assert.ok(h.cs.results.find((r) => r.commandId === "c1")?.success);
    await waitUntil("a crash-consistent point", async () => (await h.store.listObjects(pointsPrefix("m10"))).length > 1, 10_000);
    const [, info] = await h.store.listObjects(pointsPrefix("m10"));
    const doc = JSON.parse((await h.store.getObject(info!.name)).toString()) as PointDocument;
    assert.equal(doc.type, "crash-consistent");
    assert.equal(doc.sequence, 20);
    assert.equal(doc.base, undefined);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m10", d.index, doc.snapshots[String(d.index)]), sha(w.images[d.index]!));

    // No new writes: the next rounds make no new point.
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal((await h.store.listObjects(pointsPrefix("m10"))).length, 2);
    agent.end();

    await waitUntil("a heartbeat reporting m10", () =>
      h.cs.heartbeats.some((h) => h.machines.some((m) => m.machineId === "m10" && m.stats?.processedSequence === 20)),
    );
  });

  it("takes no point before a disk's copy completes, and covers a disk from its BASE on", async () => {
    const policy = everySecond("fast", 3600);
    const w = new Workload(11);
    const agent = h.agent(h.cs.agentCredential("m14"));
    await agent.open("m14");
    await h.assign("c14", "m14", policy);
    const pointsOf = async () =>
      (await Promise.all((await h.store.listObjects(pointsPrefix("m14"))).map(async (o) => JSON.parse((await h.store.getObject(o.name)).toString()) as PointDocument))).sort(
        (a, b) => a.sequence - b.sequence,
      );

    // Mid initial copy: the cadence passes, but a point now would hold half-copied disks.
    await agent.send(w.writes(10));
    await h.drain("m14");
    await new Promise((r) => setTimeout(r, 2_200));
    assert.deepEqual(await pointsOf(), []);

    // Disk 0's copy completes (disk 1 is a disk added later, still copying): 1 of 2 disks.
    await agent.send(w.base([0]));
    const disk0Base = w.sequence;
    await h.drain("m14");
    await waitUntil("the base point", async () => (await pointsOf()).length === 1);
    const [base] = await pointsOf();
    assert.equal(base!.sequence, disk0Base);
    assert.equal(base!.base, true);
    assert.deepEqual([base!.disksCovered, base!.disksTotal, Object.keys(base!.snapshots)], [1, 2, ["0"]]);

    await agent.send([...w.writes(5), ...w.base([1])]);
    const disk1Base = w.sequence;
    await h.drain("m14");
    await waitUntil("the point of disk 1's base", async () => (await pointsOf()).some((p) => p.sequence === disk1Base));
    const covering = (await pointsOf()).find((p) => p.sequence === disk1Base)!;
    assert.deepEqual([covering.disksCovered, covering.disksTotal], [2, 2]);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m14", d.index, covering.snapshots[String(d.index)]), sha(w.images[d.index]!), `disk ${d.index}`);
    agent.end();
  });

  it("prunes points and segments outside the retention window, keeping the newest point", async () => {
    const policy = everySecond("short", 2);
    const w = new Workload(10);
    const agent = h.agent(h.cs.agentCredential("m12"));
    await agent.open("m12");
    await h.assign("c2", "m12", policy);
    // Retention runs meanwhile: a point listed may be gone by the time it is read.
    const pointsOf = async () =>
      (
        await Promise.all(
          (await h.store.listObjects(pointsPrefix("m12"))).map(async (o) =>
            h.store.getObject(o.name).then(
              (b) => [JSON.parse(b.toString()) as PointDocument],
              () => [],
            ),
          ),
        )
      ).flat();

    await agent.send([...w.writes(18), ...w.base()]);
    await h.drain("m12");
    await waitUntil("the first point", async () => (await pointsOf()).some((p) => p.sequence === 20));
    await agent.send(w.writes(20));
    await h.drain("m12");
    const latest = w.images.map((img) => sha(img));
    await waitUntil("the second point", async () => (await pointsOf()).some((p) => p.sequence === 40));

    // Nothing new is written: the first point ages out, the newest stays however old it gets.
    await waitUntil("the first point to be pruned", async () => (await pointsOf()).every((p) => p.sequence !== 20), 10_000);
    await waitUntil("segments up to the kept point to be pruned", async () => (await h.store.listObjects("machines/m12/log/")).length === 0, 10_000);
    const kept = await pointsOf();
    assert.deepEqual(kept.map((p) => p.sequence), [40]);
    // Recovery can tell a pruned write from one before the base.
    const record = JSON.parse((await h.store.getObject("machines/m12/retention.json")).toString()) as { prunedThroughSequence: number; retentionSeconds: number; prunedAt: string };
    assert.equal(record.prunedThroughSequence, 39);
    assert.equal(record.retentionSeconds, 2);
    assert.ok(Date.now() - Date.parse(record.prunedAt) < 60_000);
    for (const d of DISKS) assert.equal(await replicaHash(h.store, "m12", d.index, kept[0]!.snapshots[String(d.index)]), latest[d.index]);

    // Segments after the oldest kept point stay until a newer point covers them.
    await agent.send(w.writes(5));
    await h.drain("m12");
    assert.ok((await h.store.listObjects("machines/m12/log/")).length > 0);
    agent.end();
  });
});
