// The readable names of the proto enums: one table per enum, shared by the daemons and the CLI.
export { alertCodes } from "./alert-code.js";
export { EnumNames } from "./enum-names.js";
export { healthIssueCodeName, healthIssueCodes } from "./health-issue-code.js";
export { credentialRoles, joinTokenRoles, joinTokenStates } from "./identity.js";
export { CLIENT_JOB_TYPES, jobTypes } from "./job-type.js";
export { prerequisiteCodes, pushInstallRoles, verifyTargets } from "./job-result-names.js";
export { planOperations, rehearsalCycles, rehearsalResults } from "./plan-operation.js";
export { namedRecoveryPoints } from "./recovery-point-name.js";
export { storageKinds } from "./storage-kind.js";
export { syncModes } from "./sync-mode.js";
export { workloadProfiles } from "./workload-profile.js";
