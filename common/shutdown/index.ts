export { Lifecycle, type Startable } from "./lifecycle.js";
export { onShutdown, type ShutdownOptions } from "./on-shutdown.js";
