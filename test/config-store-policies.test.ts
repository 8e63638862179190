import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ErrorCode } from "../common/errors/index.js";
import { storePaths, withStore, assertSrlabError } from "./support/config-store.js";

const freshPath = storePaths();

describe("ConfigStore policies", () => {
  test("built-in default and failback policies have ASR's values", () => {
    withStore(freshPath(), (s) => {
      assert.deepEqual(s.getPolicy("default"), {
        name: "default",
        rpoThresholdSeconds: 15 * 60,
        recoveryPointRetentionSeconds: 24 * 3600,
        crashConsistentFrequencySeconds: 5 * 60,
        appConsistentFrequencySeconds: 3600,
        resyncSchedule: "0 0 0-7,18-23 * * *",
        failback: false,
      });
      const fb = s.getPolicy("failback");
      assert.equal(fb?.failback, true);
      assert.equal(fb?.rpoThresholdSeconds, 15 * 60);
      assert.equal(fb?.recoveryPointRetentionSeconds, 24 * 3600);
      assert.equal(fb?.appConsistentFrequencySeconds, 3600);
    });
  });

  test("timeUnitSeconds=1 turns ASR minutes into seconds", () => {
    const path = freshPath();
    withStore(
      path,
      (s) => {
        const d = s.getPolicy("default");
        assert.equal(d?.rpoThresholdSeconds, 15);
        assert.equal(d?.recoveryPointRetentionSeconds, 24 * 60);
        assert.equal(d?.crashConsistentFrequencySeconds, 5);
        assert.equal(d?.appConsistentFrequencySeconds, 60);
        const fb = s.getPolicy("failback");
        assert.equal(fb?.rpoThresholdSeconds, 15);
        assert.equal(fb?.recoveryPointRetentionSeconds, 24 * 60);
        assert.equal(fb?.appConsistentFrequencySeconds, 60);
      },
      { timeUnitSeconds: 1 },
    );
    // Unedited built-ins follow the time unit of the run that opens the database.
    withStore(path, (s) => assert.equal(s.getPolicy("default")?.rpoThresholdSeconds, 900));
  });

  test("the failback policy cannot be modified or deleted", () => {
    withStore(freshPath(), (s) => {
      const fb = s.getPolicy("failback")!;
      assertSrlabError(() => s.updatePolicy({ ...fb, rpoThresholdSeconds: 1 }), ErrorCode.WRONG_STATE, /cannot be modified or deleted/);
      assertSrlabError(() => s.deletePolicy("failback"), ErrorCode.WRONG_STATE, /cannot be modified or deleted/);
      assertSrlabError(() => s.createPolicy({ ...fb, failback: false }), ErrorCode.WRONG_STATE, /cannot be modified/);
      assert.deepEqual(s.getPolicy("failback"), fb);
    });
  });

  test("create, update, validate and delete user policies", () => {
    withStore(freshPath(), (s) => {
      const gold = s.createPolicy({
        name: "gold",
        rpoThresholdSeconds: 300,
        recoveryPointRetentionSeconds: 7200,
        crashConsistentFrequencySeconds: 60,
        appConsistentFrequencySeconds: 0,
        resyncSchedule: "",
        failback: false,
      });
      assert.equal(gold.resyncSchedule, "0 0 0-7,18-23 * * *");
      assertSrlabError(() => s.createPolicy(gold), ErrorCode.INVALID_ARGUMENT, /already exists/);
      assert.equal(s.updatePolicy({ ...gold, rpoThresholdSeconds: 120 }).rpoThresholdSeconds, 120);
      assertSrlabError(() => s.createPolicy({ ...gold, name: "a", rpoThresholdSeconds: 0 }), ErrorCode.INVALID_ARGUMENT, /rpoThresholdSeconds must be a positive/);
      assertSrlabError(
        () => s.createPolicy({ ...gold, name: "b", recoveryPointRetentionSeconds: 30 }),
        ErrorCode.INVALID_ARGUMENT,
        /retention \(30s\) must be at least the crash-consistent frequency/,
      );
      assertSrlabError(() => s.createPolicy({ ...gold, name: "c", resyncSchedule: "whenever" }), ErrorCode.INVALID_ARGUMENT, /neither "immediate" nor a valid cron expression/);
      assertSrlabError(() => s.createPolicy({ ...gold, name: "d", failback: true }), ErrorCode.INVALID_ARGUMENT, /only the built-in "failback"/);
      assertSrlabError(
        () => s.createPolicy({ ...gold, name: "e", recoveryPointRetentionSeconds: 16 * 24 * 3600 }),
        ErrorCode.INVALID_ARGUMENT,
        /15-day maximum/,
      );
      const m = s.upsertMachine({ name: "vm", agentComponentId: "" });
      s.updateMachine(m.machineId, { policyName: "gold" });
      assertSrlabError(() => s.deletePolicy("gold"), ErrorCode.WRONG_STATE, /used by 1 machine/);
      s.updateMachine(m.machineId, { policyName: "default" });
      s.deletePolicy("gold");
      assert.equal(s.getPolicy("gold"), undefined);
      assert.deepEqual(
        s.listPolicies().map((p) => p.name),
        ["default", "failback"],
      );
    });
  });
});
