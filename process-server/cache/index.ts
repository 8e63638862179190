// The process server's disk cache: fsynced spool between agent acks and storage upload.
export { DiskCache, type DiskCacheOptions, type DiskCacheStats } from "./disk-cache.js";
export { CacheUnavailableError, SequenceGapError } from "./errors.js";
export { type CacheHealth, type CacheHealthInput, measureCacheHealth } from "./cache-health.js";
export { CacheHealthWatch, type CacheHealthWatchOptions } from "./cache-health-watch.js";
