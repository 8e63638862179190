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

/**
 * Node (V8) flags for srlab's daemons, given before their script on the command line (NODE_OPTIONS
 * does not take them).
 *
 * V8 starts a full garbage collection whenever the memory held by buffers grows by some tens of MB
 * since the last one, however little of the JavaScript heap is garbage. A daemon moving 100 MB/s
 * through short-lived buffers then marked its whole ~35 MB heap every ~40 MB: 89 full collections
 * in the agent and 82 in the process server over two 550 MB bursts. A larger initial old space
 * raises that limit; the buffers themselves are still freed as soon as their young objects die.
 * Measured on the 2-core lab machine (three bursts each, one machine): agent 5.4–6.3 → 3.0–3.7 ms
 * of CPU per replicated MB, process server 10.9–11.9 → 8.5–10.2, the burst 67–84 → 79–99 MB/s;
 * peak RSS of each daemon grew by under 10%.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--initial-old-space-size=128"];
