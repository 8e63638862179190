import { asBuffer, WorkerPool } from "../async/worker-pool.js";

/** A range of an image file whose SHA-256 leaf hashes a worker computes. */
export interface PageHashTask {
  path: string;
  /** Byte range [start, end); start is page-aligned. */
  start: number;
  end: number;
  pageSize: number;
}

// The process's one pool of page-hash workers: hashing a whole image (the agent's fingerprint
// after a start or a failback) takes seconds per GiB that the event loop needs for the NBD export.
// One worker: the build is background work on the protected machine, which has its own load (a
// second one made a resync right after a start no faster on two cores: it competed with it).
let pool: WorkerPool | undefined;

function pageHashWorkers(): WorkerPool {
  pool ??= new WorkerPool({ entry: new URL("./page-hash-worker.js", import.meta.url), name: "page-hash", size: 1 });
  return pool;
}

/**
 * SHA-256 leaf hashes of the pages of [start, end) of an image file, read and hashed on a worker
 * thread: `hashBytes` per page, in page order. The bytes are those the file holds when the worker
 * reads them, at some point after the call.
 */
export async function hashImagePages(task: PageHashTask): Promise<Buffer> {
  if (task.start % task.pageSize !== 0 || task.end < task.start) throw new RangeError(`page range ${task.start}..${task.end} is not page-aligned`);
  return asBuffer(await pageHashWorkers().run<Uint8Array>(task));
}

/** Ends the workers once their tasks finish (daemon shutdown); a later use starts a new pool. */
export async function closePageHashWorkers(): Promise<void> {
  const old = pool;
  pool = undefined;
  await old?.close();
}
