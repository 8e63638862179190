// Byte-level helpers shared by the capture, resync, checksum and hashing code.
export { isZero } from "./is-zero.js";
export { BufferPool } from "./buffer-pool.js";
export { SharedBufferPool } from "./shared-buffer-pool.js";
export { DAEMON_ALLOCATOR_ENV, withDaemonAllocatorEnv } from "./allocator-env.js";
