import { describe, expect, test } from "vitest";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { silentLogger } from "../common/logger.js";
import { type RecoveryPointDoc, resolveTarget, type SegmentRef, type TargetCatalog, uploadedSequenceOf } from "../common/recovery/index.js";
import { segmentObjectName } from "../common/storage-layout/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

// Resolution without storage: points, segment names and records all in memory.

const MACHINE = "vm-1";
const T0 = Date.parse("2026-01-01T00:00:00Z");
/** Write n was captured n seconds after T0. */
const capturedAt = (n: number) => T0 + n * 1000;

function point(sequence: number, type: RecoveryPointDoc["type"] = "crash-consistent"): RecoveryPointDoc {
  return {
    recoveryPointId: `${MACHINE}-${type === "app-consistent" ? "app" : "crash"}-${sequence}`,
    machineId: MACHINE,
    time: new Date(capturedAt(sequence) + 500).toISOString(),
    sequence,
    type,
    tagName: "",
    consistencyGroup: "",
    snapshots: { "0": `snap-${sequence}` },
    disksCovered: 1,
    disksTotal: 1,
  };
}

function segment(first: number, last: number): SegmentRef {
  return { name: segmentObjectName(MACHINE, first, last), firstSequence: first, lastSequence: last };
}

function record(sequence: number): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: sequence * 4096,
    length: 1,
    data: Buffer.from([sequence & 0xff]),
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: capturedAt(sequence),
    readAtSequence: 0,
  };
}

function catalog(points: RecoveryPointDoc[], segments: SegmentRef[], opts: { unreadable?: boolean } = {}): TargetCatalog & { reads: string[] } {
  const reads: string[] = [];
  return {
    machineId: MACHINE,
    points,
    segments,
    logger: silentLogger(),
    reads,
    async *readRecords(refs) {
      for (const ref of refs) {
        reads.push(ref.name);
        if (opts.unreadable) throw new Error("segment unreadable");
        const records: WriteRecord[] = [];
        for (let s = ref.firstSequence; s <= ref.lastSequence; s++) records.push(record(s));
        yield { records };
      }
    },
  };
}

async function failure(p: Promise<unknown>): Promise<SrlabError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SrlabError);
  return err as SrlabError;
}

describe("recovery target resolution", () => {
  const points = [point(10), point(20, "app-consistent"), point(30)];
  const log = [segment(11, 20), segment(21, 30), segment(31, 40), segment(41, 45)];

  test("latest replays every uploaded write after the newest point", async () => {
    const r = await resolveTarget(catalog(points, log), { kind: "latest" });
    expect(r.sequence).toBe(45);
    expect(r.base.sequence).toBe(30);
    expect(r.replaySegments).toEqual([segment(31, 40).name, segment(41, 45).name]);
    expect(r.lastWriteCapturedAtMs).toBe(capturedAt(45));
  });

  test("latest processed and latest app-consistent are points as they are", async () => {
    const processed = await resolveTarget(catalog(points, log), { kind: "latest-processed" });
    expect([processed.base.sequence, processed.replaySegments]).toEqual([30, []]);
    const app = await resolveTarget(catalog(points, log), { kind: "latest-app-consistent" });
    expect([app.sequence, app.base.type, app.replaySegments]).toEqual([20, "app-consistent", []]);
    expect(app.lastWriteCapturedAtMs).toBe(capturedAt(20));
  });

  test("a single write: the newest point at or before it plus the segments up to it", async () => {
    const r = await resolveTarget(catalog(points, log), { kind: "sequence", sequence: 25 });
    expect([r.sequence, r.base.sequence, r.replaySegments]).toEqual([25, 20, [segment(21, 30).name]]);
    expect(r.description).toMatch(/5 writes from 1 log segment/);
    const onPoint = await resolveTarget(catalog(points, log), { kind: "sequence", sequence: 20 });
    expect(onPoint.replaySegments).toEqual([]);
  });

  test("sequences outside the retained range are OUT_OF_RANGE with the range in the message", async () => {
    const tooNew = await failure(resolveTarget(catalog(points, log), { kind: "sequence", sequence: 46 }));
    expect(tooNew.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(tooNew.message).toMatch(/recoverable range is sequence 10\.\.45/);
    // Nothing was pruned: before the first point is before the base, never "retention".
    const tooOld = await failure(resolveTarget(catalog(points, log), { kind: "sequence", sequence: 5 }));
    expect(tooOld.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(tooOld.message).toMatch(/is before the base/);
    expect(tooOld.message).not.toMatch(/retention/);
    const pruned = await failure(
      resolveTarget({ ...catalog(points, log), pruned: { prunedAt: "2025-01-01T00:00:00.000Z", prunedThroughSequence: 9, retentionSeconds: 60 } }, { kind: "sequence", sequence: 5 }),
    );
    expect(pruned.message).toMatch(/was pruned by retention at 2025-01-01T00:00:00\.000Z/);
    expect((await failure(resolveTarget(catalog(points, log), { kind: "sequence", sequence: -1 }))).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  test("a hole in the log: latest stops before it, and a write past it cannot be rebuilt", async () => {
    const holed = [segment(11, 20), segment(21, 30), segment(31, 35), segment(41, 45)];
    expect(uploadedSequenceOf(points, holed)).toBe(35);
    const latest = await resolveTarget(catalog(points, holed), { kind: "latest" });
    expect(latest.sequence).toBe(35);
    const past = await failure(resolveTarget(catalog(points, holed), { kind: "sequence", sequence: 43 }));
    expect(past.code).toBe(ErrorCode.OUT_OF_RANGE);
  });

  test("a point by id, and an unknown id lists the valid ones", async () => {
    const r = await resolveTarget(catalog(points, log), { kind: "point", pointId: `${MACHINE}-crash-10` });
    expect(r.base.sequence).toBe(10);
    const missing = await failure(resolveTarget(catalog(points, log), { kind: "point", pointId: "nope" }));
    expect(missing.code).toBe(ErrorCode.NOT_FOUND);
    expect(missing.message).toContain(`valid ids: ${MACHINE}-crash-10, ${MACHINE}-app-20, ${MACHINE}-crash-30`);
  });

  test("a time: the last write captured at or before it", async () => {
    const r = await resolveTarget(catalog(points, log), { kind: "time", at: new Date(capturedAt(37) + 200) });
    expect([r.sequence, r.base.sequence, r.lastWriteCapturedAtMs]).toEqual([37, 30, capturedAt(37)]);
    const before = await failure(resolveTarget(catalog(points, log), { kind: "time", at: new Date(T0) }));
    expect(before.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect((await failure(resolveTarget(catalog(points, log), { kind: "time", at: new Date(Number.NaN) }))).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  test("before the base point (initial replication unfinished) nothing is recoverable", async () => {
    for (const kind of ["latest", "latest-processed"] as const) {
      const err = await failure(resolveTarget(catalog([], [segment(1, 8), segment(9, 12)]), { kind }));
      expect(err.code).toBe(ErrorCode.NOT_FOUND);
      expect(err.message).toMatch(/initial replication finishes/);
    }
  });

  test("an unreadable segment costs only the capture time, not the recovery", async () => {
    const c = catalog(points, log, { unreadable: true });
    const r = await resolveTarget(c, { kind: "latest-processed" });
    expect(r.lastWriteCapturedAtMs).toBe(Date.parse(points[2]!.time));
    expect(c.reads).toEqual([segment(21, 30).name]);
  });
});
