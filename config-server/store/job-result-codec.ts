import { jobTypes } from "../../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { JobResult, JobType } from "../../proto/index.js";

type ResultCase = NonNullable<JobResult["kind"]>["$case"];

/** The result each job kind may end with; kinds not listed produce none. */
const RESULT_OF: Partial<Record<JobType, ResultCase>> = {
  [JobType.JOB_TYPE_ENABLE_PROTECTION]: "sync",
  [JobType.JOB_TYPE_RESYNC]: "sync",
  [JobType.JOB_TYPE_APP_CONSISTENT_POINT]: "appConsistentPoint",
  [JobType.JOB_TYPE_WORKLOAD]: "workload",
  [JobType.JOB_TYPE_FAILOVER]: "failover",
  [JobType.JOB_TYPE_TEST_FAILOVER]: "failover",
  [JobType.JOB_TYPE_CHANGE_RECOVERY_POINT]: "failover",
  [JobType.JOB_TYPE_COMMIT_FAILOVER]: "commitFailover",
  [JobType.JOB_TYPE_TEST_FAILOVER_CLEANUP]: "testFailoverCleanup",
  [JobType.JOB_TYPE_REPROTECT_TO_ON_PREMISES]: "reprotect",
  [JobType.JOB_TYPE_FAILBACK]: "failback",
  [JobType.JOB_TYPE_COMMIT_FAILBACK]: "commitFailback",
  [JobType.JOB_TYPE_SWITCH_PROCESS_SERVER]: "switchProcessServer",
  [JobType.JOB_TYPE_DISABLE_PROTECTION]: "disableProtection",
  [JobType.JOB_TYPE_ADD_DISK]: "addDisk",
  [JobType.JOB_TYPE_REMOVE_DISK]: "removeDisk",
  [JobType.JOB_TYPE_GROUP_POINT]: "groupPoint",
  [JobType.JOB_TYPE_VERIFY]: "verify",
  [JobType.JOB_TYPE_RECOVERY_PLAN]: "planRun",
  [JobType.JOB_TYPE_REHEARSAL]: "rehearsal",
  [JobType.JOB_TYPE_LOAD_TEST]: "loadTest",
  [JobType.JOB_TYPE_PUSH_INSTALL]: "pushInstall",
};

/**
 * A result is refused unless it is the one its job kind produces: a load test cannot end with a
 * failover's figures, and an empty result is no result (not a blank one stored as if it were).
 */
export function checkJobResult(type: JobType, result: JobResult | undefined): JobResult | undefined {
  if (!result?.kind) return undefined;
  const expected = RESULT_OF[type];
  if (result.kind.$case !== expected) {
    throw new SrlabError(
      ErrorCode.INVALID_ARGUMENT,
      `a ${jobTypes.name(type)} job ${expected ? `ends with a ${expected} result` : "produces no result"}, not ${result.kind.$case}`,
    );
  }
  return result;
}

/** The stored text of a result: its canonical JSON, "" for none. */
export function encodeJobResult(result: JobResult | undefined): string {
  return result?.kind ? JSON.stringify(JobResult.toJSON(result)) : "";
}

/** A stored result back; text from before results were typed (free-form JSON) reads as none. */
export function decodeJobResult(text: string | null | undefined): JobResult | undefined {
  if (!text) return undefined;
  try {
    const result = JobResult.fromJSON(JSON.parse(text));
    return result.kind ? result : undefined;
  } catch {
    return undefined;
  }
}
