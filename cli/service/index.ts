export { installService, SYSTEM_UNIT_DIR, systemdNotRunningMessage, systemdRunning, uninstallService } from "./install.js";
export { planUnit, type PlanUnitInput } from "./plan-unit.js";
export { announceReady } from "./readiness.js";
export { SERVICE_ROLES, serviceRole } from "./roles.js";
export { createSdNotifier, notifySocketPath, type SdNotifier, watchdogIntervalMs } from "./sd-notify.js";
export { quoteWord, renderUnit, type UnitSpec, unitName } from "./unit-file.js";
export { type PrometheusTargetGroup, prometheusTargets, type RemoteDaemon, remoteTargets } from "./prometheus-sd.js";
