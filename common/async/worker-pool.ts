import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isMainThread, parentPort, type Transferable, Worker } from "node:worker_threads";

/** Default pool size: two workers at most, since srlab daemons share small machines with each other. */
export function defaultWorkerCount(): number {
  return Math.min(2, availableParallelism());
}

export interface WorkerPoolOptions {
  /**
   * The worker's entry module as compiled JavaScript, e.g. `new URL("./x-worker.js", import.meta.url)`.
   * When only its TypeScript source exists (unit tests run the sources), the worker loads it through tsx.
   */
  entry: URL;
  /** Workers at most; they start on first use. Defaults to defaultWorkerCount(). */
  size?: number;
  /** Names the workers in errors and thread listings. */
  name: string;
  /** Turns a worker's error (name and message) back into an error of the right class. */
  reviveError?: (name: string, message: string) => Error;
}

/** What a worker's handler returns: the result and the buffers to move (not copy) back. */
export interface WorkerReply {
  result: unknown;
  transfer?: Transferable[];
}

interface Job {
  task: unknown;
  transfer: Transferable[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  /** Resolves when the task has succeeded or failed. */
  settled?: Promise<unknown>;
}

interface Slot {
  worker: Worker;
  job?: Job;
}

type Message = { ok: true; result: unknown } | { ok: false; name: string; message: string };

/**
 * A fixed set of worker threads running one task each at a time, the rest queued in arrival order.
 * Keeps CPU-heavy pure work (compression, encryption) off the event loop. A task that throws fails
 * alone; a worker that dies fails its task and is replaced on the next one. Idle workers do not
 * keep the process alive; close() lets running tasks finish, then ends the workers.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly idle: Slot[] = [];
  private readonly queue: Job[] = [];
  private closed = false;
  readonly size: number;
  private readonly spawnSpec: { filename: string | URL; options: ConstructorParameters<typeof Worker>[1] };

  constructor(private readonly o: WorkerPoolOptions) {
    this.size = o.size ?? defaultWorkerCount();
    if (!Number.isInteger(this.size) || this.size < 1) throw new RangeError(`worker pool "${o.name}" needs at least one worker, got ${o.size}`);
    this.spawnSpec = resolveEntry(o.entry, o.name);
  }

  /** Workers started so far (they start on demand). */
  get started(): number {
    return this.slots.length;
  }

  /** Runs one task; `transfer` lists buffers the task gives away (they are unusable here after). */
  run<T>(task: unknown, transfer: Transferable[] = []): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`worker pool "${this.o.name}" is closed`));
    let job!: Job;
    const result = new Promise<T>((resolve, reject) => {
      job = { task, transfer, resolve: resolve as (v: unknown) => void, reject };
    });
    job.settled = result.catch(() => undefined);
    this.queue.push(job);
    this.dispatch();
    return result;
  }

  /** Refuses new tasks, lets the running ones finish, then ends every worker. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error(`worker pool "${this.o.name}" closed before the task ran`));
    await Promise.all(this.slots.map((slot) => slot.job?.settled));
    const slots = this.slots.splice(0);
    this.idle.length = 0;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      const slot = this.idle.pop() ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      try {
        slot.worker.postMessage(job.task, job.transfer);
      } catch (err) {
        // The task could not be sent (e.g. an uncloneable value): the worker is still usable.
        slot.job = undefined;
        this.release(slot);
        job.reject(err as Error);
      }
    }
  }

  private spawn(): Slot {
    const worker = new Worker(this.spawnSpec.filename, this.spawnSpec.options);
    const slot: Slot = { worker };
    this.slots.push(slot);
    worker.on("message", (m: Message) => {
      const job = slot.job;
      slot.job = undefined;
      this.release(slot);
      if (!job) return;
      if (m.ok) job.resolve(m.result);
      else job.reject(this.o.reviveError?.(m.name, m.message) ?? Object.assign(new Error(m.message), { name: m.name }));
      this.dispatch();
    });
    const lost = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      const j = this.idle.indexOf(slot);
      if (j >= 0) this.idle.splice(j, 1);
      const job = slot.job;
      slot.job = undefined;
      job?.reject(new Error(`worker of pool "${this.o.name}" died while running a task: ${why}`));
      this.dispatch();
    };
    worker.on("error", (err) => lost(err.message));
    worker.on("exit", (code) => lost(`exit code ${code}`));
    return slot;
  }

  private release(slot: Slot): void {
    if (!this.slots.includes(slot)) return;
    slot.worker.unref();
    if (!this.idle.includes(slot)) this.idle.push(slot);
  }
}

/** The compiled entry when it exists; else its TypeScript source, loaded through tsx (unit tests). */
function resolveEntry(entry: URL, name: string): { filename: string | URL; options: ConstructorParameters<typeof Worker>[1] } {
  const base = { name, workerData: undefined as unknown };
  if (existsSync(entry)) return { filename: entry, options: base };
  const source = new URL(entry.href.replace(/\.js$/, ".ts"));
  if (!existsSync(source)) throw new Error(`worker entry of pool "${name}" not found: ${fileURLToPath(entry)}`);
  // tsx's ESM API (its CommonJS build cannot be import()ed); a dev dependency, present wherever sources run.
  const tsxPackage = createRequire(import.meta.url).resolve("tsx/package.json");
  const exported = (JSON.parse(readFileSync(tsxPackage, "utf8")) as { exports: Record<string, { import: { default: string } }> }).exports;
  const tsxApi = new URL(exported["./esm/api"]!.import.default, pathToFileURL(tsxPackage)).href;
  // An eval'd worker is a CommonJS script: it registers tsx for itself and imports the source.
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => m.tsImport(require("node:worker_threads").workerData.entry, ${JSON.stringify(source.href)}))`;
  return { filename: boot, options: { ...base, eval: true, workerData: { entry: source.href } } };
}

/**
 * The worker side: answers each task with handler's result (its listed buffers moved, not copied)
 * or with the error it threw, named so the pool can revive its class.
 */
export function serveWorkerTasks<T>(handler: (task: T) => WorkerReply): void {
  if (isMainThread || !parentPort) throw new Error("serveWorkerTasks runs inside a worker thread");
  const port = parentPort;
  port.on("message", (task: T) => {
    let reply: WorkerReply;
    try {
      reply = handler(task);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ ok: false, name: e.name, message: e.message } satisfies Message);
      return;
    }
    port.postMessage({ ok: true, result: reply.result } satisfies Message, reply.transfer ?? []);
  });
}

/**
 * A Buffer that owns its whole memory, so it can be transferred: itself when it does, else a copy
 * (small Buffers live in Node's shared slab, which must never be moved to another thread).
 */
export function ownedBuffer(buf: Uint8Array): Buffer<ArrayBuffer> {
  if (buf.buffer instanceof ArrayBuffer && buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.byteLength > 0) {
    return Buffer.from(buf.buffer, 0, buf.byteLength);
  }
  const copy = Buffer.allocUnsafeSlow(buf.byteLength);
  copy.set(buf);
  return copy;
}

/** A Buffer view of bytes that arrived from another thread (they arrive as plain Uint8Arrays). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
