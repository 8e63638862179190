export { type MachineOperations, PlanRunner, type PlanRunnerContext, planGroupName, type RunSummary } from "./plan-runner.js";
export { planService } from "./plan-service.js";
export { PLAN_OPERATIONS, type PlanAction, PlanFileError, type PlanGroup, type PlanSpec, parsePlan } from "./plan-spec.js";
