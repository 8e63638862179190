export { type MachineOperations, PlanRunner, type PlanRunnerContext, planGroupName, type RunSummary } from "./plan-runner.js";
export { planService } from "./plan-service.js";
export { PLAN_OPERATIONS, type PlanAction, PlanFileError, type PlanGroup, type PlanSpec, parsePlan } from "./plan-spec.js";
export { Rehearsals } from "./rehearsal.js";
export type { RehearsalContext, RehearsalOptions } from "./rehearsal-context.js";
export { REHEARSAL_GROUP } from "./rehearsal-steps.js";
export { RehearsalScheduler, scheduleProblem } from "./rehearsal-scheduler.js";
export { renderRehearsalHtml } from "./rehearsal-html.js";
export { type RehearsalReport, renderJunit } from "./rehearsal-report.js";
