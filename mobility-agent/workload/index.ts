export { Prng } from "../../common/random/index.js";
export {
  runWorkload,
  type WorkloadProgress,
  type WorkloadResult,
  type WorkloadRunOptions,
  type WorkloadTarget,
} from "./run-workload.js";
export { WorkloadGenerator, type WorkloadOp } from "./workload-generator.js";
export { WORKLOAD_PROFILES, type WorkloadProfile, type WorkloadSpec } from "./workload-spec.js";
