// Byte-level helpers shared by the capture, resync, checksum and hashing code.
export { isZero } from "./is-zero.js";
export { BufferPool } from "./buffer-pool.js";
export { SharedBufferPool } from "./shared-buffer-pool.js";
export { DAEMON_ALLOCATOR_ENV, DAEMON_NODE_FLAGS, withDaemonAllocatorEnv } from "./allocator-env.js";
