/**
 * Preloaded (`node --import`) into every daemon a keeper starts: when the keeper dies — even by
 * SIGKILL — its IPC channel closes and the daemon dies at once as well, so no daemon outlives
 * its supervisor and a later `srlab up` never meets an orphan holding its ports.
 */
if (process.send && process.channel) {
  // The channel must not keep a daemon alive that is shutting down by itself.
  process.channel.unref();
  process.on("disconnect", () => process.kill(process.pid, "SIGKILL"));
}
