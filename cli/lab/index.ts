export { checkHealth } from "./health-probe.js";
export { type LabComponent, LabLayout, type LabManifest, labDir } from "./lab-layout.js";
export { azureAgentName, labDown, labUp, removeAzureMachine, startAzureMachine, type UpOptions } from "./lab-runner.js";
export { isAlive } from "./processes.js";
export { addMachines, labMachines } from "./add-machines.js";
export { type KeeperState, readKeeperState } from "./keeper-state.js";
export { type DaemonStatus, daemonStatuses } from "./supervision.js";
export { forgetLabComponents } from "./lab-remove.js";
