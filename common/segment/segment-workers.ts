import { defaultWorkerCount, WorkerPool } from "../async/worker-pool.js";
import { SegmentIntegrityError } from "./errors.js";

// The process's one pool of segment workers: compression and encryption never run on the event
// loop. One per process (not per caller) because the applier, the recovery reader and the uploader
// all decode or encode through the plain encodeSegment/decodeSegment functions.

let size = defaultWorkerCount();
let pool: WorkerPool | undefined;

/** Sets the number of segment workers (default min(2, cores)); a running pool is replaced once idle. */
export function configureSegmentWorkers(workers: number | undefined): void {
  const next = workers ?? defaultWorkerCount();
  if (!Number.isInteger(next) || next < 1) throw new RangeError(`segment workers must be a positive integer, got ${workers}`);
  if (next === size) return;
  size = next;
  const old = pool;
  pool = undefined;
  void old?.close();
}

/** The shared pool, started on first use. */
export function segmentWorkers(): WorkerPool {
  pool ??= new WorkerPool({
    entry: new URL("./segment-worker.js", import.meta.url),
    name: "segment-codec",
    size,
    reviveError: (name, message) => {
      if (name === "SegmentIntegrityError") return new SegmentIntegrityError(message);
      if (name === "RangeError") return new RangeError(message);
      if (name === "TypeError") return new TypeError(message);
      return Object.assign(new Error(message), { name });
    },
  });
  return pool;
}

/** Ends the workers once their tasks finish (daemon shutdown); a later use starts a new pool. */
export async function closeSegmentWorkers(): Promise<void> {
  const old = pool;
  pool = undefined;
  await old?.close();
}

/**
 * The pool as a daemon part: sized at start, closed at stop. A daemon that encodes or decodes
 * segments adds it before the parts that use it, so it stops after them (their tasks settle first).
 */
export function segmentWorkersPart(workers?: number): { start(): Promise<void>; stop(): Promise<void> } {
  return {
    start: async () => configureSegmentWorkers(workers),
    stop: closeSegmentWorkers,
  };
}
