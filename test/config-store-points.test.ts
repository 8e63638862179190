import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ErrorCode } from "../common/errors/index.js";
import { RecoveryPointType } from "../proto/index.js";
import { storePaths, withStore, point, assertSrlabError } from "./support/config-store.js";

const freshPath = storePaths();

describe("ConfigStore recovery points", () => {
  test("the machine overview has every machine's newest point (ties on sequence by time) and the policies", () => {
    withStore(freshPath(), (s) => {
      const a = s.upsertMachine({ name: "a", agentComponentId: "" }).machineId;
      const b = s.upsertMachine({ name: "b", agentComponentId: "" }).machineId;
      s.upsertMachine({ name: "c", agentComponentId: "" });
      const t0 = new Date("2024-05-01T10:00:00Z").getTime();
      s.addRecoveryPoint(point(a, "a2", 20, new Date(t0 + 2000)));
      s.addRecoveryPoint(point(a, "a1", 10, new Date(t0 + 1000)));
      s.addRecoveryPoint(point(b, "b-tag", 7, new Date(t0 + 9000), RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT));
      s.addRecoveryPoint(point(b, "b-crash", 7, new Date(t0 + 8000)));
      const o = s.machineOverview();
      assert.deepEqual(o.machines.map((m) => m.name).sort(), ["a", "b", "c"]);
      assert.deepEqual(
        [...o.latestPoints].map(([m, p]) => [m, p.recoveryPointId]).sort(),
        [
          [a, "a2"],
          [b, "b-tag"],
        ].sort(),
      );
      for (const m of o.machines) assert.equal(o.latestPoints.get(m.machineId)?.recoveryPointId, s.listRecoveryPoints(m.machineId).at(-1)?.recoveryPointId);
      assert.ok(o.policies.has("default"));
    });
  });

  test("ordering by sequence, idempotent add, processed marking, prune and delete-except", () => {
    withStore(freshPath(), (s) => {
      const m = s.upsertMachine({ name: "vm", agentComponentId: "" }).machineId;
      const t0 = new Date("2024-05-01T10:00:00Z").getTime();
      // Reported out of order.
      s.addRecoveryPoint(point(m, "rp3", 30, new Date(t0 + 3000)));
      s.addRecoveryPoint(point(m, "rp1", 10, new Date(t0 + 1000)));
      s.addRecoveryPoint(point(m, "rp2", 20, new Date(t0 + 2000), RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT));
      s.addRecoveryPoint(point(m, "rp4", 40, new Date(t0 + 4000)));
      // A retransmit changes nothing.
      s.addRecoveryPoint({ ...point(m, "rp1", 999, new Date(t0)), tagName: "other" });
      const list = s.listRecoveryPoints(m);
      assert.deepEqual(
        list.map((p) => [p.recoveryPointId, p.sequence]),
        [
          ["rp1", 10],
          ["rp2", 20],
          ["rp3", 30],
          ["rp4", 40],
        ],
      );
      assert.equal(list[1].type, RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT);
      assert.equal(list[1].time?.getTime(), t0 + 2000);
      assert.equal(s.getMachine(m)?.lastRecoveryPoint?.recoveryPointId, "rp4");

      assert.equal(s.markProcessed(m, 25), 2);
      assert.deepEqual(
        s.listRecoveryPoints(m).map((p) => p.processed),
        [true, true, false, false],
      );

      const pruned = s.pruneRecoveryPoints(m, new Date(t0 + 2500));
      assert.deepEqual(
        pruned.map((p) => p.recoveryPointId),
        ["rp1", "rp2"],
      );
      const removed = s.deleteRecoveryPoints(m, ["rp3"]);
      assert.deepEqual(
        removed.map((p) => p.recoveryPointId),
        ["rp4"],
      );
      assert.deepEqual(
        s.listRecoveryPoints(m).map((p) => p.recoveryPointId),
        ["rp3"],
      );
      assertSrlabError(() => s.addRecoveryPoint(point("ghost", "x", 1, new Date())), ErrorCode.MACHINE_NOT_FOUND, /machine "ghost"/);
    });
  });
});
