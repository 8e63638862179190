import { describe, expect, test } from "vitest";
import { healthIssueCodeName, healthIssueCodes, jobTypes, namedRecoveryPoints, planOperations, storageKinds, workloadProfiles } from "../common/enum-names/index.js";
import { ErrorCode } from "../common/errors/index.js";
import { parseHealthIssues } from "../config-server/store/row-codec.js";
import { HealthIssueCode, JobType, NamedRecoveryPoint, StorageKind, WorkloadProfile } from "../proto/index.js";

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

  test("every health issue code is shown by its name without the prefix, as before it became an enum", () => {
    const values = Object.values(HealthIssueCode).filter((v): v is number => typeof v === "number" && v > 0);
    for (const v of values) expect(`HEALTH_ISSUE_CODE_${healthIssueCodeName(v)}`).toBe(HealthIssueCode[v]);
    expect(healthIssueCodes.parse("CACHE_FREE_SPACE_LOW")).toBe(HealthIssueCode.HEALTH_ISSUE_CODE_CACHE_FREE_SPACE_LOW);
    expect(healthIssueCodeName(HealthIssueCode.HEALTH_ISSUE_CODE_UNSPECIFIED)).toBe("");
  });

  test("health issues stored with string codes read back as the enum", () => {
    const stored = JSON.stringify([
      { health: 2, code: "RPO_THRESHOLD_EXCEEDED", message: "old row" },
      { health: 3, code: HealthIssueCode.HEALTH_ISSUE_CODE_NO_HEARTBEAT, message: "new row" },
      { health: 2, code: "GONE_CODE", message: "a code this build does not know" },
    ]);
    expect(parseHealthIssues(stored).map((i) => i.code)).toEqual([
      HealthIssueCode.HEALTH_ISSUE_CODE_RPO_THRESHOLD_EXCEEDED,
      HealthIssueCode.HEALTH_ISSUE_CODE_NO_HEARTBEAT,
      HealthIssueCode.HEALTH_ISSUE_CODE_UNSPECIFIED,
    ]);
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
