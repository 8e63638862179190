export { type MachineOperations, PlanRunner, type PlanRunnerContext, planGroupName, type RunSummary } from "./plan-runner.js";
export { planService } from "./plan-service.js";
export { PLAN_OPERATIONS, type PlanAction, PlanFileError, type PlanGroup, type PlanSpec, parsePlan } from "./plan-spec.js";
export { REHEARSAL_GROUP, type RehearsalContext, type RehearsalOptions, Rehearsals } from "./rehearsal.js";
export { RehearsalScheduler, scheduleProblem } from "./rehearsal-scheduler.js";
export { renderRehearsalHtml } from "./rehearsal-html.js";
export { type RehearsalReport, renderJunit } from "./rehearsal-report.js";
