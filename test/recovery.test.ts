import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { failoverDiskName, pointObjectName, replicaBlobName, segmentObjectName } from "../common/storage-layout/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { type MaterializeProgress, RecoveryEngine, type RecoveryPointDoc, type RecoveryTarget, writeRetentionRecord } from "../common/recovery/index.js";
import { applyRecords, blobPageTarget } from "../common/replica/index.js";
import { deriveSegmentKey, encodeSegment } from "../common/segment/index.js";
import { type BlobStore, DirectoryBlobStore } from "../common/storage/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";
import { seededInts } from "../common/random/index.js";

const MACHINE = "m1";
const KEY_ID = "k1";
const KEY = deriveSegmentKey("recovery-test-secret", KEY_ID);
const segmentKeys = (id: string) => (id === KEY_ID ? KEY : undefined);
const DISKS = [
  { index: 0, sizeBytes: 64 * 1024 },
  { index: 1, sizeBytes: 40 * 1024 },
];
const LAST = 120;
/** Disk 1 is added here; its first write is the next sequence. */
const DISK1_ADDED = 40;
/** Disk 1's initial copy completes here (its BASE record): from here on it is part of a failover. */
const DISK1_BASE = 42;
const TAG_SEQ = 50;
const POINTS: Array<{ sequence: number; type: RecoveryPointDoc["type"] }> = [
  { sequence: 30, type: "crash-consistent" },
  { sequence: TAG_SEQ, type: "app-consistent" },
  { sequence: 80, type: "crash-consistent" },
];
/** The replica has been applied past the newest point; recovery must not read the live blob. */
const PROCESSED = 100;
const T0 = Date.UTC(2025, 0, 1);
const capturedAt = (seq: number) => T0 + seq * 1000;
const pointId = (seq: number) => `${MACHINE}-p${seq}`;


const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Fixture {
  dir: string;
  store: BlobStore;
  engine: RecoveryEngine;
  /** SHA-256 per disk of the source after each sequence (undefined while the disk does not exist). */
  hashes: Array<Array<string | undefined>>;
  segments: Array<{ name: string; first: number; last: number }>;
}

/** Writes a history the way the process server would: segments, replica blobs, snapshots, point documents. */
async function buildFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "srlab-recovery-"));
  const store = new DirectoryBlobStore({ directory: dir, fsync: false });
  await store.init();
  const rand = seededInts(7);

  const records: WriteRecord[] = [];
  const images = DISKS.map((d) => Buffer.alloc(d.sizeBytes));
  const hashes: Array<Array<string | undefined>> = [[sha(images[0]!), undefined]];
  for (let seq = 1; seq <= LAST; seq++) {
    const base = { sequence: seq, tagName: "", consistencyGroup: "", capturedAtMs: capturedAt(seq), readAtSequence: 0, data: Buffer.alloc(0), offset: 0, length: 0 };
    if (seq === TAG_SEQ) {
      records.push({ ...base, kind: WriteKind.WRITE_KIND_TAG, diskIndex: 0, tagName: "app-tag" });
    } else if (seq === DISK1_BASE) {
      records.push({ ...base, kind: WriteKind.WRITE_KIND_BASE, diskIndex: 1 });
    } else {
      const diskIndex = seq === DISK1_ADDED + 1 ? 1 : seq > DISK1_ADDED ? rand(2) : 0;
      const size = DISKS[diskIndex]!.sizeBytes;
      const zero = rand(10) === 0;
      const length = zero ? 1 + rand(20000) : 1 + rand(5000);
      const offset = rand(size - length);
      if (zero) {
        records.push({ ...base, kind: WriteKind.WRITE_KIND_ZERO, diskIndex, offset, length });
        images[diskIndex]!.fill(0, offset, offset + length);
      } else {
        const data = Buffer.alloc(length);
        for (let i = 0; i < length; i++) data[i] = rand(256);
        records.push({ ...base, kind: WriteKind.WRITE_KIND_DATA, diskIndex, offset, length, data });
        data.copy(images[diskIndex]!, offset);
      }
    }
    hashes.push(images.map((img, i) => (i === 1 && seq < DISK1_ADDED ? undefined : sha(img))));
  }

  // Log segments of uneven size, plus one re-cut duplicate overlapping two of them.
  const segments: Fixture["segments"] = [];
  const putSegment = async (first: number, last: number) => {
    const buf = await encodeSegment(records.slice(first - 1, last), { machineId: MACHINE, key: KEY, keyId: KEY_ID, createdAtMs: capturedAt(last) + 200 });
    const name = segmentObjectName(MACHINE, first, last);
    await store.putObject(name, buf);
    segments.push({ name, first, last });
  };
  for (let first = 1; first <= LAST; ) {
    const last = Math.min(LAST, first + 2 + rand(10));
    await putSegment(first, last);
    first = last + 1;
  }
  await putSegment(84, 92);

  // Replica with points, as the applier makes them.
  const replica = (i: number) => replicaBlobName(MACHINE, i);
  await store.createPageBlob(replica(0), DISKS[0]!.sizeBytes);
  let applied = 0;
  const applyTo = async (upTo: number) => {
    const run = records.slice(applied, upTo);
    applied = upTo;
    for (const d of DISKS) {
      if (d.index === 1 && upTo < DISK1_ADDED) continue;
      await applyRecords(blobPageTarget(store, replica(d.index)), run, d.index, d.sizeBytes);
    }
  };
  for (const p of POINTS) {
    if (p.sequence > DISK1_ADDED && (await store.pageBlobSize(replica(1))) === undefined) {
      await applyTo(DISK1_ADDED);
      await store.createPageBlob(replica(1), DISKS[1]!.sizeBytes);
    }
    await applyTo(p.sequence);
    const covered = DISKS.filter((d) => d.index === 0 || p.sequence >= DISK1_ADDED);
    const snapshots: Record<string, string> = {};
    for (const d of covered) snapshots[String(d.index)] = await store.snapshotPageBlob(replica(d.index));
    const doc: RecoveryPointDoc = {
      recoveryPointId: pointId(p.sequence),
      machineId: MACHINE,
      time: new Date(capturedAt(p.sequence) + 500).toISOString(),
      sequence: p.sequence,
      type: p.type,
      tagName: p.type === "app-consistent" ? "app-tag" : "",
      consistencyGroup: "",
      snapshots,
      disksCovered: covered.length,
      disksTotal: covered.length,
      base: p.sequence === POINTS[0]!.sequence,
    };
    await store.putObject(pointObjectName(MACHINE, doc.recoveryPointId), Buffer.from(JSON.stringify(doc, null, 2)));
  }
  await applyTo(PROCESSED);

  return { dir, store, engine: new RecoveryEngine({ store, segmentKeys, replayBatchBytes: 8 * 1024 }), hashes, segments };
}

const target = (i: number) => failoverDiskName(MACHINE, i);

/** Materializes `t` and checks every disk against the source image at the resolved sequence. */
async function recoverAndCompare(f: Fixture, t: RecoveryTarget, expectSequence: number) {
  const resolved = await f.engine.resolve(MACHINE, t);
  assert.equal(resolved.sequence, expectSequence, resolved.description);
  const progress: MaterializeProgress[] = [];
  const result = await f.engine.materialize(MACHINE, DISKS, resolved, target, (p) => progress.push(p));
  const expected = f.hashes[expectSequence]!;
  // A disk added later is in the failover once its initial copy completed (its BASE record).
  const expectedDisks = DISKS.filter((d) => d.index === 0 || expectSequence >= DISK1_BASE).map((d) => d.index);
  assert.deepEqual(
    result.disks.map((d) => d.index),
    expectedDisks,
  );
  for (const d of DISKS) {
    if (expectedDisks.includes(d.index)) {
      const image = await f.store.readPages(target(d.index), 0, d.sizeBytes);
      assert.equal(sha(image), expected[d.index], `disk ${d.index} at sequence ${expectSequence} (${resolved.description})`);
    } else {
      assert.ok(result.omittedDisks.includes(d.index));
      assert.equal(await f.store.pageBlobSize(target(d.index)), undefined, `disk ${d.index} must not exist at ${expectSequence}`);
    }
  }
  const copy = progress.filter((p) => p.phase === "copy");
  assert.equal(copy.at(-1)?.done, result.bytesCopied);
  assert.equal(copy.at(-1)?.total, result.bytesCopied);
  if (resolved.replaySegments.length) {
    assert.deepEqual(progress.at(-1), { phase: "replay", done: resolved.replaySegments.length, total: resolved.replaySegments.length });
    assert.ok(result.replayedRecords > 0);
  } else {
    assert.equal(result.replayedRecords, 0);
  }
  return { resolved, result };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SrlabError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("recovery engine", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await buildFixture();
  });
  afterAll(async () => {
    await f.store.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it("lists points by sequence and finds the uploaded sequence", async () => {
    const points = await f.engine.listPoints(MACHINE);
    assert.deepEqual(
      points.map((p) => p.recoveryPointId),
      POINTS.map((p) => pointId(p.sequence)),
    );
    assert.equal(await f.engine.uploadedSequence(MACHINE), LAST);
  });

  it("recovers each point as it is", async () => {
    for (const p of POINTS) {
      const { resolved } = await recoverAndCompare(f, { kind: "point", pointId: pointId(p.sequence) }, p.sequence);
      assert.equal(resolved.replaySegments.length, 0);
      assert.equal(resolved.lastWriteCapturedAtMs, capturedAt(p.sequence));
    }
  });

  it("latest replays the segments beyond the newest point", async () => {
    const { resolved } = await recoverAndCompare(f, { kind: "latest" }, LAST);
    assert.equal(resolved.base.recoveryPointId, pointId(80));
    assert.equal(resolved.lastWriteCapturedAtMs, capturedAt(LAST));
  });

  it("latest processed and latest app-consistent are points without replay", async () => {
    const processed = await recoverAndCompare(f, { kind: "latest-processed" }, 80);
    assert.equal(processed.resolved.replaySegments.length, 0);
    const app = await recoverAndCompare(f, { kind: "latest-app-consistent" }, TAG_SEQ);
    assert.equal(app.resolved.base.type, "app-consistent");
  });

  it("recovers any single write between points", async () => {
    for (const seq of [65, 31, 79, 81, 86, 93, 101]) {
      const { resolved } = await recoverAndCompare(f, { kind: "sequence", sequence: seq }, seq);
      assert.equal(resolved.base.sequence, Math.max(...POINTS.map((p) => p.sequence).filter((s) => s <= seq)));
      assert.equal(resolved.lastWriteCapturedAtMs, capturedAt(seq));
    }
  });

  it("brings a disk added after the base point into existence by replay once its copy completed", async () => {
    // Base is the point at 30, which covers disk 0 only; disk 1's first write is 41, its BASE 42.
    const { resolved } = await recoverAndCompare(f, { kind: "sequence", sequence: 45 }, 45);
    assert.equal(resolved.base.recoveryPointId, pointId(30));
    assert.equal(resolved.base.disksCovered, 1);
    // Mid-copy (written, no BASE yet) it is left out, and the blob of the earlier run removed.
    const mid = await recoverAndCompare(f, { kind: "sequence", sequence: DISK1_ADDED + 1 }, DISK1_ADDED + 1);
    assert.deepEqual(mid.result.omittedDisks, [1]);
    await recoverAndCompare(f, { kind: "sequence", sequence: DISK1_ADDED }, DISK1_ADDED);
  });

  it("recovers to a time: the last write captured at or before it", async () => {
    const { resolved } = await recoverAndCompare(f, { kind: "time", at: new Date(capturedAt(95) + 300) }, 95);
    assert.equal(resolved.base.recoveryPointId, pointId(80));
    assert.equal(resolved.lastWriteCapturedAtMs, capturedAt(95));
    // Exactly on a capture time includes that write; between two points starts from the earlier one.
    await recoverAndCompare(f, { kind: "time", at: new Date(capturedAt(57)) }, 57);
    // Past the last write: everything.
    await recoverAndCompare(f, { kind: "time", at: new Date(capturedAt(LAST) + 3_600_000) }, LAST);
  });

  it("explains targets outside what storage holds", async () => {
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "point", pointId: "nope" }), ErrorCode.NOT_FOUND, new RegExp(`valid ids: ${pointId(30)}, ${pointId(50)}, ${pointId(80)}`));
    // Nothing was pruned: a write before the first point is before the base, and the message says so.
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "sequence", sequence: 10 }), ErrorCode.OUT_OF_RANGE, /sequence 10 is before the base: .*initial replication.*range is sequence 30\.\.120/);
    await assert.rejects(f.engine.resolve(MACHINE, { kind: "sequence", sequence: 10 }), (err: Error) => !/retention/.test(err.message));
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "sequence", sequence: LAST + 1 }), ErrorCode.OUT_OF_RANGE, new RegExp(`last uploaded sequence is ${LAST}`));
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "time", at: new Date(capturedAt(5)) }), ErrorCode.OUT_OF_RANGE, /is before the base/);
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "sequence", sequence: -1 }), ErrorCode.INVALID_ARGUMENT, /non-negative/);
    // Before initial replication finished there is no base to recover from.
    for (const kind of ["latest", "latest-processed"] as const) {
      await rejectsWith(f.engine.resolve("m-none", { kind }), ErrorCode.NOT_FOUND, /no recovery point yet: .*initial replication finishes/);
    }
  });

  it("reports the recoverable range, and after retention says what was pruned and when", async () => {
    const range = await f.engine.range(MACHINE);
    assert.deepEqual(range.oldest, { pointId: pointId(30), sequence: 30, time: new Date(capturedAt(30) + 500).toISOString(), base: true });
    assert.equal(range.lastSequence, LAST);
    assert.equal(range.pruned, undefined);
    assert.deepEqual(await f.engine.range("m-none"), { oldest: undefined, lastSequence: 0, pruned: undefined });

    // As the process server's retention leaves it: the oldest point removed, the record written.
    const other = await buildFixture();
    try {
      const [first] = await other.engine.listPoints(MACHINE);
      await writeRetentionRecord(other.store, MACHINE, { prunedAt: "2025-01-02T03:04:05.000Z", prunedThroughSequence: 49, retentionSeconds: 86400 });
      await other.engine.deletePoints(MACHINE, [pointId(50), pointId(80)]);
      assert.equal(first!.sequence, 30);
      const pruned = await other.engine.range(MACHINE);
      assert.equal(pruned.oldest?.sequence, 50);
      assert.equal(pruned.pruned?.prunedAt, "2025-01-02T03:04:05.000Z");
      await rejectsWith(
        other.engine.resolve(MACHINE, { kind: "sequence", sequence: 35 }),
        ErrorCode.OUT_OF_RANGE,
        /sequence 35 was pruned by retention at 2025-01-02T03:04:05\.000Z .*range is sequence 50\.\.120/,
      );
      await rejectsWith(other.engine.resolve(MACHINE, { kind: "time", at: new Date(capturedAt(35)) }), ErrorCode.OUT_OF_RANGE, /was pruned by retention at/);
    } finally {
      await other.store.close();
      await rm(other.dir, { recursive: true, force: true });
    }
  });

  it("deletePoints keeps only the kept ids", async () => {
    await rejectsWith(f.engine.deletePoints(MACHINE, ["typo"]), ErrorCode.NOT_FOUND, /nothing deleted/);
    assert.equal((await f.engine.listPoints(MACHINE)).length, POINTS.length);
    const deleted = await f.engine.deletePoints(MACHINE, [pointId(80)]);
    assert.deepEqual(deleted.sort(), [pointId(30), pointId(50)]);
    assert.deepEqual(
      (await f.engine.listPoints(MACHINE)).map((p) => p.recoveryPointId),
      [pointId(80)],
    );
    for (const d of DISKS) assert.equal((await f.store.listSnapshots(replicaBlobName(MACHINE, d.index))).length, 1);
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "latest-app-consistent" }), ErrorCode.NOT_FOUND, /no app-consistent recovery point/);
    await recoverAndCompare(f, { kind: "point", pointId: pointId(80) }, 80);
  });
});

describe("recovery engine with log segments missing", () => {
  let f: Fixture;
  let holeAfterNewest: Fixture["segments"][number];
  beforeAll(async () => {
    f = await buildFixture();
    const holding = (seq: number) => f.segments.find((s) => s.first <= seq && seq <= s.last && !(s.first === 84 && s.last === 92))!;
    const mid = holding(60);
    holeAfterNewest = holding(105);
    await f.store.deleteObject(mid.name);
    await f.store.deleteObject(holeAfterNewest.name);
  });
  afterAll(async () => {
    await f.store.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it("refuses sequences whose segments are gone", async () => {
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "sequence", sequence: 65 }), ErrorCode.OUT_OF_RANGE, /segments for sequences \d+\.\.\d+ are no longer in storage/);
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "sequence", sequence: 110 }), ErrorCode.OUT_OF_RANGE, /last uploaded sequence/);
    await rejectsWith(f.engine.resolve(MACHINE, { kind: "time", at: new Date(capturedAt(110)) }), ErrorCode.OUT_OF_RANGE, /no longer in storage/);
  });

  it("still recovers what is reachable", async () => {
    assert.equal(await f.engine.uploadedSequence(MACHINE), holeAfterNewest.first - 1);
    await recoverAndCompare(f, { kind: "latest" }, holeAfterNewest.first - 1);
    await recoverAndCompare(f, { kind: "sequence", sequence: 85 }, 85);
    await recoverAndCompare(f, { kind: "point", pointId: pointId(50) }, 50);
  });
});
