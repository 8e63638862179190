import { JobType } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Job types as `srlab jobs`, `--json` output and the dashboard show them. */
export const jobTypes = new EnumNames("job type", {
  EnableProtection: JobType.JOB_TYPE_ENABLE_PROTECTION,
  DisableProtection: JobType.JOB_TYPE_DISABLE_PROTECTION,
  Resync: JobType.JOB_TYPE_RESYNC,
  AppConsistentPoint: JobType.JOB_TYPE_APP_CONSISTENT_POINT,
  Workload: JobType.JOB_TYPE_WORKLOAD,
  Failover: JobType.JOB_TYPE_FAILOVER,
  TestFailover: JobType.JOB_TYPE_TEST_FAILOVER,
  TestFailoverCleanup: JobType.JOB_TYPE_TEST_FAILOVER_CLEANUP,
  ChangeRecoveryPoint: JobType.JOB_TYPE_CHANGE_RECOVERY_POINT,
  CommitFailover: JobType.JOB_TYPE_COMMIT_FAILOVER,
  ReprotectToOnPremises: JobType.JOB_TYPE_REPROTECT_TO_ON_PREMISES,
  Failback: JobType.JOB_TYPE_FAILBACK,
  CommitFailback: JobType.JOB_TYPE_COMMIT_FAILBACK,
  SwitchProcessServer: JobType.JOB_TYPE_SWITCH_PROCESS_SERVER,
  AddDisk: JobType.JOB_TYPE_ADD_DISK,
  RemoveDisk: JobType.JOB_TYPE_REMOVE_DISK,
  GroupPoint: JobType.JOB_TYPE_GROUP_POINT,
  Verify: JobType.JOB_TYPE_VERIFY,
  RecoveryPlan: JobType.JOB_TYPE_RECOVERY_PLAN,
  Rehearsal: JobType.JOB_TYPE_REHEARSAL,
  LoadTest: JobType.JOB_TYPE_LOAD_TEST,
  PushInstall: JobType.JOB_TYPE_PUSH_INSTALL,
});

/** The job types the CLI runs itself and records with CreateClientJob. */
export const CLIENT_JOB_TYPES: readonly JobType[] = [JobType.JOB_TYPE_LOAD_TEST, JobType.JOB_TYPE_PUSH_INSTALL];
