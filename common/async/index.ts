// Building blocks for asynchronous code: exclusion, wake-ups, bounded concurrency, waiting.
export { isPromise } from "./is-promise.js";
export { KeyedMutex } from "./keyed-mutex.js";
export { type PollOptions, PollTimeoutError, pollUntil } from "./poll.js";
export { runLimited } from "./run-limited.js";
export { Semaphore } from "./semaphore.js";
export { Mutex, SerialQueue } from "./serial-queue.js";
export { pause, sleep } from "./sleep.js";
export { Wake } from "./wake.js";
export { Watermark } from "./watermark.js";
export { asBuffer, defaultWorkerCount, ownedBuffer, serveWorkerTasks, type WorkerPoolOptions, type WorkerReply, WorkerPool } from "./worker-pool.js";
