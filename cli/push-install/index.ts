// Push installation of srlab onto a lab machine over SSH (issue 12), run from the head node.
export { type PackedSrlab, packSrlab, srlabRoot } from "./package-tarball.js";
export { judgePrerequisites, MIN_NODE_MAJOR, type PrerequisiteFailure, prerequisiteScript, type TargetFacts } from "./prerequisites.js";
export { errorLine, PUSH_INSTALL_ROLES, type PushInstallOptions, type PushInstallResult, PushInstallError, type PushInstallRole, pushInstall, type RemoteJoin, remoteJoinCommand, REQUIRED_FREE_BYTES, STEP_FAILURE_CODES } from "./push-install.js";
export { type ExecResult, shellQuote, SshSession, type SshTarget } from "./ssh-session.js";
