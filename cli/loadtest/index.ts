export { buildSpec, type LoadSpec, SpecError, type SpecFlags } from "./spec.js";
export { EXIT_THRESHOLD, type LoadtestOptions, preflight, runLoadtest } from "./run.js";
export { LOAD_PROFILES, PROFILE_NAMES } from "./profiles.js";
export type { LoadReport } from "./report.js";
export { renderReportHtml } from "./report-html.js";
