export { runMasterTarget } from "./daemon.js";
export { MasterTarget } from "./master-target.js";
export { type MasterTargetOptions, type MasterTargetOptionsInput, masterTargetOptions } from "./options.js";
