export { asrThresholds, processServerAlerts, type AlertCondition } from "./alert-rules.js";
export { SampleWindow } from "./sample-window.js";
export { TelemetrySampler, type TelemetrySamplerOptions, type TelemetrySource } from "./telemetry-sampler.js";
export { telemetryService, type TelemetryServiceContext } from "./telemetry-service.js";
