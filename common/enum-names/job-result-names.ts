import { PrerequisiteCode, PushInstallRole, VerifyTarget } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Which copy a verification read, as `srlab verify --json` names it. */
export const verifyTargets = new EnumNames("verify target", {
  "recovery point": VerifyTarget.VERIFY_TARGET_POINT,
  "failed-over disks": VerifyTarget.VERIFY_TARGET_FAILED_OVER,
  "test-failover disks": VerifyTarget.VERIFY_TARGET_TEST_FAILOVER,
  replica: VerifyTarget.VERIFY_TARGET_REPLICA,
  "failed-back disks": VerifyTarget.VERIFY_TARGET_FAILED_BACK,
});

/** The daemons srlab push-install installs, as `--role` names them. */
export const pushInstallRoles = new EnumNames("push-install role", {
  agent: PushInstallRole.PUSH_INSTALL_ROLE_AGENT,
  "process-server": PushInstallRole.PUSH_INSTALL_ROLE_PROCESS_SERVER,
  "master-target": PushInstallRole.PUSH_INSTALL_ROLE_MASTER_TARGET,
});

/** Failed push-install prerequisites, by the codes scripts match. */
export const prerequisiteCodes = new EnumNames("prerequisite code", {
  NODE_MISSING: PrerequisiteCode.PREREQUISITE_CODE_NODE_MISSING,
  NODE_TOO_OLD: PrerequisiteCode.PREREQUISITE_CODE_NODE_TOO_OLD,
  NPM_MISSING: PrerequisiteCode.PREREQUISITE_CODE_NPM_MISSING,
  DISK_SPACE_LOW: PrerequisiteCode.PREREQUISITE_CODE_DISK_SPACE_LOW,
  STATE_DIR_NOT_WRITABLE: PrerequisiteCode.PREREQUISITE_CODE_STATE_DIR_NOT_WRITABLE,
  HOSTNAME_UNRESOLVED: PrerequisiteCode.PREREQUISITE_CODE_HOSTNAME_UNRESOLVED,
});
