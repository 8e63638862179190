export { checkHealth } from "./health-probe.js";
export { type LabComponent, LabLayout, type LabManifest, labDir } from "./lab-layout.js";
export { labDown, labUp, type UpOptions } from "./lab-runner.js";
export { isAlive } from "./processes.js";
