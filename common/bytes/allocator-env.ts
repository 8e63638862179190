/**
 * glibc malloc settings for srlab's daemons, as environment variables (read once, when a process
 * starts, so they must be in the environment it is started with).
 *
 * By default glibc maps every large allocation (a gRPC message, a segment, a Put Page body) with
 * mmap and unmaps it when freed, so the next buffer of that size is fresh memory again: the kernel
 * zero-fills and maps each 4 KiB page on first touch. Measured on the 2-core lab machine, copying
 * into a fresh 4 MiB Buffer cost 0.4–0.9 ms per MiB this way and 0.11–0.22 ms with these settings
 * (0.02 into a reused one); one machine's replication took 69.8 instead of 81.0 ms of agent and
 * process-server CPU per MB. With them, allocations up to 64 MiB come from the heap and freed
 * memory is kept for reuse until 128 MiB of it sit unused at the heap's top.
 */
export const DAEMON_ALLOCATOR_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(64 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024),
};

/** `env` with the daemon allocator settings added where it does not set them itself. */
export function withDaemonAllocatorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...DAEMON_ALLOCATOR_ENV, ...env };
}
