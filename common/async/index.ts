// Building blocks for asynchronous code: mutual exclusion, wake-ups, bounded concurrency.
export { KeyedMutex } from "./keyed-mutex.js";
export { Mutex } from "./mutex.js";
export { runLimited } from "./run-limited.js";
export { Wake } from "./wake.js";
export { Watermark } from "./watermark.js";
