import { describe, expect, test } from "vitest";
import { jobTypes, namedRecoveryPoints, planOperations, storageKinds, workloadProfiles } from "../common/enum-names/index.js";
import { ErrorCode } from "../common/errors/index.js";
import { JobType, NamedRecoveryPoint, StorageKind, WorkloadProfile } from "../proto/index.js";

describe("enum names", () => {
  test("every readable name maps to one enum value and back", () => {
    for (const table of [storageKinds, workloadProfiles, namedRecoveryPoints, jobTypes, planOperations]) {
      for (const name of table.names) expect(table.name(table.parse(name))).toBe(name);
    }
    expect(workloadProfiles.parse("append-log")).toBe(WorkloadProfile.WORKLOAD_PROFILE_APPEND_LOG);
    expect(jobTypes.name(JobType.JOB_TYPE_ENABLE_PROTECTION)).toBe("EnableProtection");
    expect(namedRecoveryPoints.parse("latest-processed")).toBe(NamedRecoveryPoint.NAMED_RECOVERY_POINT_LATEST_PROCESSED);
  });

  test("every job type of the proto has a name", () => {
    const values = Object.values(JobType).filter((v): v is number => typeof v === "number" && v > 0);
    for (const v of values) expect(jobTypes.nameOf(v)).toBeDefined();
  });

  test("UNSPECIFIED, unknown values and unknown names are one INVALID_ARGUMENT naming the valid values", () => {
    expect(() => storageKinds.require(StorageKind.STORAGE_KIND_UNSPECIFIED)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: "storage kind not set: must be one of azure, directory" }),
    );
    expect(() => storageKinds.name(99)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: "storage kind 99 (unknown): must be one of azure, directory" }));
    expect(() => workloadProfiles.parse("bursty")).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: 'workload profile "bursty": must be one of sequential, random, zipf, append-log' }),
    );
    expect(storageKinds.nameOf(0)).toBeUndefined();
  });
});
