export { DashboardServer, type DashboardServerOptions } from "./dashboard-server.js";
export { DashboardSessions, type DashboardSessionsOptions } from "./sessions.js";
export { authenticateRequest, bearerToken, parseCookies, sessionCookie, SESSION_COOKIE, type DashboardAccess } from "./request-auth.js";
export { alertHistory, type AlertEvent } from "./alert-history.js";
export { type DashboardSource, Snapshot } from "./snapshot.js";
export { pageAt } from "./routes.js";
export { renderDashboardPage, type DashboardPage } from "./layout.js";
export { ACTION_NAMES, type ActionName, type ActionParams, type DashboardActions } from "./actions.js";
