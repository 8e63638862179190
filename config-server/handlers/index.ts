export type { Caller } from "./caller.js";
export type { ConfigHost } from "./host.js";
export { adminService, configurationService, identityService } from "./services.js";
export { ADMIN_SERVICE_RULE, authorize } from "./authorization.js";
export { dashboardActions } from "./dashboard-actions.js";
