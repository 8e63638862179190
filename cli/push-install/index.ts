// Push installation of srlab onto a lab machine over SSH (issue 12), run from the head node.
export { type PackedSrlab, packSrlab, srlabRoot } from "./package-tarball.js";
export { judgePrerequisites, MIN_NODE_MAJOR, type PrerequisiteFailure, prerequisiteScript, type TargetFacts } from "./prerequisites.js";
export { PUSH_INSTALL_ROLES, type PushInstallOptions, type PushInstallResult, PushInstallError, type PushInstallRole, pushInstall, REQUIRED_FREE_BYTES } from "./push-install.js";
export { type ExecResult, shellQuote, SshSession, type SshTarget } from "./ssh-session.js";
