export { Lifecycle, type Startable } from "./lifecycle.js";
export { onShutdown, type ShutdownOptions } from "./on-shutdown.js";
export { type RunDaemonOptions, runDaemon } from "./run-daemon.js";
