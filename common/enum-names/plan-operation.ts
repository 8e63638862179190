import { PlanOperation, RehearsalCycle, RehearsalResult } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Plan run operations as `srlab plan run --op` and `srlab plan runs` name them. */
export const planOperations = new EnumNames("plan operation", {
  "test-failover": PlanOperation.PLAN_OPERATION_TEST_FAILOVER,
  failover: PlanOperation.PLAN_OPERATION_FAILOVER,
  failback: PlanOperation.PLAN_OPERATION_FAILBACK,
  reprotect: PlanOperation.PLAN_OPERATION_REPROTECT,
  commit: PlanOperation.PLAN_OPERATION_COMMIT,
  cleanup: PlanOperation.PLAN_OPERATION_CLEANUP,
  "rehearsal-test": PlanOperation.PLAN_OPERATION_REHEARSAL_TEST,
  "rehearsal-full": PlanOperation.PLAN_OPERATION_REHEARSAL_FULL,
});

/** Rehearsal cycles as `srlab plan rehearse --cycle` names them. */
export const rehearsalCycles = new EnumNames("rehearsal cycle", {
  test: RehearsalCycle.REHEARSAL_CYCLE_TEST,
  full: RehearsalCycle.REHEARSAL_CYCLE_FULL,
});

/** How a rehearsal came out, as report.json and `srlab plan rehearse` name it. */
export const rehearsalResults = new EnumNames("rehearsal result", {
  passed: RehearsalResult.REHEARSAL_RESULT_PASSED,
  failed: RehearsalResult.REHEARSAL_RESULT_FAILED,
});
