import { Registry } from "prom-client";
import { afterAll, afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { Semaphore } from "../common/async/index.js";
import { silentLogger } from "../common/logger.js";
import { closeSegmentWorkers, decodeSegment, deriveSegmentKey, SegmentKeyRing } from "../common/segment/index.js";
import type { BlobStore } from "../common/storage/index.js";
import { logLocation, parseSegmentObjectName } from "../common/storage-layout/index.js";
import { recordBytes } from "../common/wire/index.js";
import type { DiskCache } from "../process-server/cache/index.js";
import { Machine } from "../process-server/machine.js";
import type { MachineRegistry } from "../process-server/machine-registry.js";
import { ProcessServerMetrics } from "../process-server/metrics.js";
import { Uploader } from "../process-server/pipeline/uploader.js";
import { WriteKind, type WriteRecord } from "../proto/index.js";

// The uploader cuts a segment when it holds segment.maxBytes or its oldest record is
// segment.maxDelayMs old. Time is faked (setTimeout and Date); encoding and "storage" are real
// asynchronous work, so uploads are awaited, while cut decisions are read from the cache reads.

const MACHINE = "vm-cut";
const key = deriveSegmentKey("secret", "k1");

/** The cache's contract as the uploader uses it, in memory. */
class MemoryCache {
  readonly records: WriteRecord[] = [];
  /** Sequences the uploader asked for: one entry per segment cut. */
  readonly reads: number[] = [];
  lastSequence(): number {
    return this.records.at(-1)?.sequence ?? 0;
  }
  async read(_machine: string, from: number, maxBytes: number): Promise<WriteRecord[]> {
    this.reads.push(from);
    const out: WriteRecord[] = [];
    let bytes = 0;
    for (const r of this.records) {
      if (r.sequence < from) continue;
      if (bytes >= maxBytes) break;
      out.push(r);
      bytes += recordBytes(r);
    }
    return out;
  }
  async release(_machine: string, through: number): Promise<void> {
    while (this.records.length > 0 && this.records[0]!.sequence <= through) this.records.shift();
  }
}

/** Segments put, decodable; waiters are woken by real (not faked) completion. */
class MemoryStore {
  readonly objects = new Map<string, Buffer>();
  private waiters: (() => void)[] = [];
  async putObject(name: string, data: Buffer): Promise<void> {
    this.objects.set(name, data);
    for (const w of this.waiters.splice(0)) w();
  }
  async until(count: number): Promise<void> {
    while (this.objects.size < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  /** [first, last] of each segment, in sequence order. */
  ranges(): [number, number][] {
    return [...this.objects.keys()].map((n) => parseSegmentObjectName(n)!).map((p): [number, number] => [p.firstSequence, p.lastSequence]).sort((a, b) => a[0] - b[0]);
  }
}

function newRecord(sequence: number, bytes: number): WriteRecord {
  const data = Buffer.alloc(bytes, sequence & 0xff);
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex: 0,
    offset: sequence * bytes,
    length: bytes,
    data,
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: Date.now(),
    readAtSequence: 0,
  };
}

function setup(segment: { maxBytes: number; maxDelayMs: number }) {
  const cache = new MemoryCache();
  const store = new MemoryStore();
  const registry = { save: async () => undefined } as unknown as MachineRegistry;
  const machine = new Machine({ machineId: MACHINE, disks: [], uploadedSequence: 0 }, registry);
  const applied: number[] = [];
  const uploader = new Uploader({
    machine,
    cache: cache as unknown as DiskCache,
    store: store as unknown as BlobStore,
    ...segment,
    codec: "lz4",
    keys: SegmentKeyRing.of("k1", key),
    retryTimeUnitMs: 1000,
    logger: silentLogger(),
    metrics: new ProcessServerMetrics(new Registry()),
    logOf: () => logLocation(MACHINE),
    onUploaded: (records) => applied.push(...records.map((r) => r.sequence)),
    concurrency: 3,
    uploadSlots: new Semaphore(6),
  });
  let next = 1;
  const append = (count: number, bytes: number) => {
    for (let i = 0; i < count; i++) {
      const r = newRecord(next++, bytes);
      cache.records.push(r);
      uploader.noteAppended(recordBytes(r));
    }
  };
  uploader.start();
  return { cache, store, machine, uploader, append, applied };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(() => closeSegmentWorkers());

describe("segment cutting by bytes and age", () => {
  test("a trickle goes out once its oldest record is maxDelayMs old, not before", async () => {
    const { cache, store, uploader, append, applied } = setup({ maxBytes: 1 << 20, maxDelayMs: 1000 });
    try {
      append(1, 4096);
      await vi.advanceTimersByTimeAsync(600);
      append(1, 4096); // younger: does not restart the clock
      await vi.advanceTimersByTimeAsync(399);
      expect(cache.reads).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(cache.reads).toEqual([1]);
      await store.until(1);
      expect(store.ranges()).toEqual([[1, 2]]);

      // The next record starts a new clock.
      append(1, 4096);
      await vi.advanceTimersByTimeAsync(999);
      expect(cache.reads).toEqual([1]);
      await vi.advanceTimersByTimeAsync(1);
      await store.until(2);
      expect(store.ranges()).toEqual([
        [1, 2],
        [3, 3],
      ]);
      await vi.waitFor(() => expect(applied).toEqual([1, 2, 3]));
    } finally {
      await uploader.stop();
    }
  });

  test("a burst is cut at once into full-size segments; only its remainder waits for the age", async () => {
    const maxBytes = 256 * 1024;
    const { cache, store, uploader, append, machine } = setup({ maxBytes, maxDelayMs: 60_000 });
    try {
      // 18 records of 64 KiB: four full segments of four records, then two that are not enough.
      append(18, 64 * 1024);
      await store.until(4);
      expect(store.ranges()).toEqual([
        [1, 4],
        [5, 8],
        [9, 12],
        [13, 16],
      ]);
      await vi.advanceTimersByTimeAsync(59_000);
      expect(cache.reads).toEqual([1, 5, 9, 13]);
      await vi.advanceTimersByTimeAsync(1_000);
      await store.until(5);
      expect(store.ranges().at(-1)).toEqual([17, 18]);
      await vi.waitFor(() => expect(machine.uploaded.value).toBe(18));

      // Every segment holds exactly the records of its name, byte for byte.
      for (const [name, data] of store.objects) {
        const { firstSequence } = parseSegmentObjectName(name)!;
        const { records } = await decodeSegment(data, () => key, { machineId: MACHINE, firstSequence });
        for (const r of records) expect(Buffer.from(r.data).equals(Buffer.alloc(64 * 1024, r.sequence & 0xff))).toBe(true);
      }
    } finally {
      await uploader.stop();
    }
  });

  test("a segment's records reach the applier in the same turn as the uploaded position moves", async () => {
    // Otherwise an applier woken in between finds more uploaded than queued and downloads the
    // segment it is about to be handed from memory.
    const { uploader, append, machine, applied } = setup({ maxBytes: 1 << 20, maxDelayMs: 60_000 });
    try {
      append(3, 1000);
      const seenAtAdvance = machine.uploaded.waitFor(3).then(() => [...applied]);
      uploader.flush();
      expect(await seenAtAdvance).toEqual([1, 2, 3]);
    } finally {
      await uploader.stop();
    }
  });

  test("flush sends what is cached without waiting for the age", async () => {
    const { store, uploader, append } = setup({ maxBytes: 1 << 20, maxDelayMs: 60_000 });
    try {
      append(3, 1000);
      await vi.advanceTimersByTimeAsync(10);
      uploader.flush();
      await store.until(1);
      expect(store.ranges()).toEqual([[1, 3]]);
    } finally {
      await uploader.stop();
    }
  });
});
