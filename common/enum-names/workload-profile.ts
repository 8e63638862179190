import { WorkloadProfile } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** The workload generator's patterns, as --profile and load profiles name them. */
export const workloadProfiles = new EnumNames("workload profile", {
  sequential: WorkloadProfile.WORKLOAD_PROFILE_SEQUENTIAL,
  random: WorkloadProfile.WORKLOAD_PROFILE_RANDOM,
  zipf: WorkloadProfile.WORKLOAD_PROFILE_ZIPF,
  "append-log": WorkloadProfile.WORKLOAD_PROFILE_APPEND_LOG,
});
