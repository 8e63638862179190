import assert from "node:assert/strict";
import { describe, test } from "vitest";
import Database from "better-sqlite3";
import { ErrorCode } from "../common/errors/index.js";
import { ConfigStore, migrations, SchemaVersionError } from "../config-server/store/index.js";
import { JobState, ReplicationState, JobType, SyncMode } from "../proto/index.js";
import { storePaths, withStore, registerPs, registerAgent, disk, point, assertSrlabError } from "./support/config-store.js";

const freshPath = storePaths();

describe("ConfigStore migrations", () => {
  test("an empty file is migrated to the latest version", () => {
    const path = freshPath();
    withStore(path, (s) => {
      assert.equal(s.schemaVersion(), migrations.length);
    });
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all();
      assert.deepEqual(
        rows,
        migrations.map((m) => ({ version: m.version, name: m.name })),
      );
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("user_version", { simple: true }), migrations.length);
    } finally {
      db.close();
    }
  });

  test("connection pragmas: WAL, synchronous FULL, foreign keys on", () => {
    withStore(freshPath(), (s) => {
      // Reach the private handle only to check the pragmas the store promises.
      const db = (s as unknown as { db: Database.Database }).db;
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("synchronous", { simple: true }), 2);
      assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
    });
  });

  test("re-opening is a no-op", () => {
    const path = freshPath();
    withStore(path, (s) => s.setSetting("marker", "kept"));
    withStore(path, (s) => {
      assert.equal(s.schemaVersion(), migrations.length);
      assert.equal(s.getSetting("marker"), "kept");
      assert.equal(s.listPolicies().length, 2);
    });
    const db = new Database(path, { readonly: true });
    try {
      const n = db.prepare("SELECT COUNT(*) AS n FROM schema_migrations").get() as { n: number };
      assert.equal(n.n, migrations.length);
    } finally {
      db.close();
    }
  });

  test("a database from a newer build is refused with a clear error", () => {
    const path = freshPath();
    withStore(path, () => {});
    const db = new Database(path);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
      migrations.length + 1,
      "from-the-future",
      Date.now(),
    );
    db.close();
    assert.throws(
      () => ConfigStore.open(path),
      (e: unknown) => {
        assert.ok(e instanceof SchemaVersionError);
        assert.equal(e.databaseVersion, migrations.length + 1);
        assert.equal(e.supportedVersion, migrations.length);
        assert.match(e.message, /newer than this srlab build supports/);
        return true;
      },
    );
  });
});

describe("ConfigStore restart", () => {
  test("everything persists across close and open", () => {
    const path = freshPath();
    const ids = withStore(
      path,
      (s) => {
        s.setSetting("passphrase-hash", "scrypt$abc");
        const ps = registerPs(s, "ps1");
        const agent = registerAgent(s, "vm1");
        const m = s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
        s.setMachineDisks(m.machineId, [disk("d0", 0), disk("d1", 1)]);
        s.assignProcessServer(m.machineId);
        s.updateMachine(m.machineId, { policyName: "default", state: ReplicationState.REPLICATION_STATE_PROTECTED });
        s.createPolicy({
          name: "silver",
          rpoThresholdSeconds: 60,
          recoveryPointRetentionSeconds: 600,
          crashConsistentFrequencySeconds: 10,
          appConsistentFrequencySeconds: 60,
          resyncSchedule: "*/5 * * * * *",
          failback: false,
        });
        const job = s.createJob({ type: JobType.JOB_TYPE_RESYNC, machineId: m.machineId, steps: ["Compare", "Send"] });
        s.updateJobStep(job.jobId, "Compare", { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 30 });
        s.addRecoveryPoint(point(m.machineId, "rp1", 5, new Date()));
        const cmd = s.enqueueCommand(agent.componentId, job.jobId, { startSync: { machineId: m.machineId, mode: SyncMode.SYNC_MODE_RESYNC } });
        return { ps: ps.componentId, agent: agent.componentId, machine: m.machineId, job: job.jobId, cmd };
      },
      { timeUnitSeconds: 1 },
    );

    withStore(
      path,
      (s) => {
        assert.equal(s.getSetting("passphrase-hash"), "scrypt$abc");
        assert.equal(registerPs(s, "ps1").componentId, ids.ps, "a restarted PS gets its identity back");
        const m = s.getMachine("vm1")!;
        assert.equal(m.machineId, ids.machine);
        assert.equal(m.agentComponentId, ids.agent);
        assert.equal(m.processServerId, ids.ps);
        assert.equal(m.policyName, "default");
        assert.equal(m.state, ReplicationState.REPLICATION_STATE_PROTECTED);
        assert.equal(m.disks.length, 2);
        assert.equal(m.lastRecoveryPoint?.recoveryPointId, "rp1");
        assert.equal(s.getPolicy("silver")?.resyncSchedule, "*/5 * * * * *");
        assert.equal(s.getPolicy("default")?.rpoThresholdSeconds, 15);
        assert.equal(s.getJob(ids.job)?.steps[0].progressPercent, 30);
        assert.deepEqual(
          s.pendingCommands(ids.agent).map((c) => c.commandId),
          [ids.cmd],
          "the outbox survives the restart",
        );
        const failed = s.failUnfinishedJobs("configuration server restarted");
        assert.deepEqual(
          failed.map((j) => j.jobId),
          [ids.job],
        );
      },
      { timeUnitSeconds: 1 },
    );
  });

  test("a closed store refuses writes", () => {
    const s = ConfigStore.open(freshPath());
    s.close();
    s.close();
    assertSrlabError(() => s.setSetting("a", "b"), ErrorCode.UNAVAILABLE, /closed/);
  });
});
