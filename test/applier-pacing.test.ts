import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, expect, test } from "vitest";
import { silentLogger } from "../common/logger.js";
import { createBlobStore } from "../common/storage/index.js";
import { Machine } from "../process-server/machine.js";
import { MachineRegistry } from "../process-server/machine-registry.js";
import { Applier, type ApplySink, type ReplicaSink } from "../process-server/pipeline/index.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function records(first: number, last: number): WriteRecord[] {
  return Array.from({ length: last - first + 1 }, (_, i) => ({
    sequence: first + i,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: (first + i) * 4096,
    length: 4096,
    data: Buffer.alloc(4096, first + i),
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: 0,
    readAtSequence: 0,
  }));
}

/**
 * An applier whose sink records each pass's sequences and marks them processed at once. The
 * machine's received position is `state.received`: above what was enqueued, more writes are
 * on their way.
 */
function pacedApplier(passIntervalMs: number) {
  const state = { received: 0 };
  const dir = mkdtempSync(join(tmpdir(), "srlab-pacing-"));
  dirs.push(dir);
  const machine = new Machine({ machineId: "m1", disks: [], uploadedSequence: 0 }, new MachineRegistry(join(dir, "machines")));
  const passes: number[][] = [];
  const sink: ApplySink = {
    apply: async (rs) => {
      passes.push(rs.map((r) => r.sequence));
      machine.processed.advance(rs[rs.length - 1]!.sequence);
    },
    settle: async () => {},
    skipTo: async () => {},
    close: async () => {},
  };
  const applier = new Applier({
    machine,
    store: createBlobStore({ kind: "directory", directory: join(dir, "storage") }),
    segmentKeys: () => undefined,
    retryTimeUnitMs: 10,
    maxQueueBytes: 64 * 1024 * 1024,
    batchBytes: 64 * 1024 * 1024,
    passIntervalMs,
    receivedSequence: () => state.received,
    logger: silentLogger(),
    processServerId: "ps",
    replica: {} as ReplicaSink,
    sinks: { of: () => sink, retire: async () => {} },
    logOf: () => ({ prefix: "log/", parse: () => undefined }) as never,
    stateOf: () => "state.json",
  });
  const enqueue = (first: number, last: number) => {
    machine.uploaded.advance(last);
    applier.enqueue(records(first, last));
  };
  return { applier, machine, passes, enqueue, state };
}

test("uploads that arrive within the pass interval are applied together in the next pass", async () => {
  const { applier, machine, passes, enqueue, state } = pacedApplier(60_000);
  // The agent keeps writing: the cache holds more than has been uploaded.
  state.received = 1000;
  applier.start();
  try {
    enqueue(1, 10);
    await machine.processed.waitFor(10, AbortSignal.timeout(5_000));
    enqueue(11, 20);
    enqueue(21, 30);
    // The interval has not passed: nothing more is applied on its own.
    await sleep(300);
    expect(machine.processed.value).toBe(10);
    // A drain (or failover) waiting for them does not wait out the interval, and gets one pass.
    applier.hurry(30);
    await machine.processed.waitFor(30, AbortSignal.timeout(5_000));
    expect(passes).toEqual([records(1, 10).map((r) => r.sequence), records(11, 30).map((r) => r.sequence)]);
  } finally {
    await applier.stop();
  }
});

test("once the writes stop, what is queued is applied without waiting out the interval", async () => {
  const { applier, machine, passes, enqueue, state } = pacedApplier(60_000);
  state.received = 1000;
  applier.start();
  try {
    enqueue(1, 10);
    await machine.processed.waitFor(10, AbortSignal.timeout(5_000));
    enqueue(11, 20);
    await sleep(500);
    // More is received than uploaded: the pass waits for it.
    expect(machine.processed.value).toBe(10);
    // Everything received is now uploaded and queued; nothing more comes.
    state.received = 30;
    enqueue(21, 30);
    const t0 = performance.now();
    await machine.processed.waitFor(30, AbortSignal.timeout(5_000));
    // After a moment of quiet (300 ms), far inside the 60 s interval.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(passes).toEqual([records(1, 10).map((r) => r.sequence), records(11, 30).map((r) => r.sequence)]);
  } finally {
    await applier.stop();
  }
});

test("without an interval each upload is applied as soon as the applier is free", async () => {
  const { applier, machine, passes, enqueue } = pacedApplier(0);
  applier.start();
  try {
    enqueue(1, 10);
    await machine.processed.waitFor(10, AbortSignal.timeout(5_000));
    enqueue(11, 20);
    await machine.processed.waitFor(20, AbortSignal.timeout(5_000));
    expect(passes.length).toBe(2);
  } finally {
    await applier.stop();
  }
});
