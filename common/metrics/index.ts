export { type MetricsServer, type MetricsServerOptions, startMetricsServer } from "./metrics-server.js";
export { createRegistry } from "./registry.js";
export type { Registry } from "prom-client";
export { ProcessUsage, type ProcessUsageSample } from "./process-usage.js";
export { RateMeter } from "./rate-meter.js";
export { forgetSeries } from "./forget-series.js";
