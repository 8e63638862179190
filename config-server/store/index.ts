// Public surface of the configuration server's persistence.
export { ASR_MINUTE_SECONDS, builtInPolicies, DEFAULT_POLICY_NAME, FAILBACK_POLICY_NAME, IMMEDIATE_RESYNC, OFF_HOURS_RESYNC_SCHEDULE } from "./built-in-policies.js";
export type { CommandAnswer, StoredCommand } from "./commands-table.js";
export type { CommandResultKind } from "./command-result-codec.js";
export type { RegisterComponentInput } from "./components-table.js";
export { ConfigStore, type ConfigStoreOptions } from "./config-store.js";
export type { IssuedCredential } from "./credentials-table.js";
export type { NewJoinToken, StoredJoinToken } from "./join-tokens-table.js";
export { type JobReport, MAX_JOB_REPORT_BYTES } from "./job-reports-table.js";
export { checkJobResult } from "./job-result-codec.js";
export { type CreateJobInput, type FinishJobInput, isTerminalJobState, type JobStepUpdate } from "./jobs-table.js";
export type { MachinePatch, UpsertMachineInput } from "./machines-table.js";
export { type Migration, migrations } from "./migrations.js";
export type { SynchronousMode } from "./open-database.js";
export { SchemaVersionError } from "./store-error.js";
export type { GroupPoint, ReplicationGroup } from "./groups-table.js";
export type { PlanRunRow, PlanSchedule, StoredPlan } from "./plans-table.js";
export type { StoredProof } from "./proofs-table.js";
