export { registerDaemonCommands } from "./daemons.js";
export { registerIdentityCommands } from "./identity.js";
export { registerLabCommands } from "./lab.js";
export { registerPlanCommands } from "./plans.js";
export { registerRecoveryCommands } from "./recovery.js";
export { registerReplicationCommands } from "./replication.js";
export { dirOption, run } from "./options.js";
