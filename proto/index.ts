// The only public surface of the generated gRPC types. Generated files repeat a few helper
// names (protobufPackage, DeepPartial, ...); the explicit exports below settle those.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export * from "./gen/srlab/v1/admin_service.js";
export * from "./gen/srlab/v1/command_result.js";
export * from "./gen/srlab/v1/configuration_service.js";
export * from "./gen/srlab/v1/disk_service.js";
export * from "./gen/srlab/v1/identity_service.js";
export * from "./gen/srlab/v1/job_result.js";
export * from "./gen/srlab/v1/machine_handover.js";
export * from "./gen/srlab/v1/group_service.js";
export * from "./gen/srlab/v1/plan_service.js";
export * from "./gen/srlab/v1/proof_service.js";
export * from "./gen/srlab/v1/master_target_service.js";
export * from "./gen/srlab/v1/process_service.js";
export * from "./gen/srlab/v1/replication.js";
export * from "./gen/srlab/v1/telemetry_service.js";
export * from "./gen/srlab/v1/types.js";
export type { DeepPartial, MessageFns } from "./gen/srlab/v1/types.js";
export { protobufFileName, protobufPackage } from "./gen/srlab/v1/types.js";

/**
 * Directory holding the .proto sources (for reflection via proto-loader): this folder when run
 * from the TypeScript sources, `../../proto` when run from the compiled `dist/proto/`.
 */
export const protoRoot = [new URL(".", import.meta.url), new URL("../../proto/", import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(`${dir}/srlab/v1/types.proto`))!;

/** Proto files that define the srlab.v1 services, relative to protoRoot. */
export const serviceProtoFiles = [
  "srlab/v1/admin_service.proto",
  "srlab/v1/configuration_service.proto",
  "srlab/v1/disk_service.proto",
  "srlab/v1/identity_service.proto",
  "srlab/v1/process_service.proto",
  "srlab/v1/master_target_service.proto",
  "srlab/v1/proof_service.proto",
  "srlab/v1/group_service.proto",
  "srlab/v1/plan_service.proto",
  "srlab/v1/telemetry_service.proto",
];
