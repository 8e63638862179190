import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import Database from "better-sqlite3";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { ConfigStore, type ConfigStoreOptions, migrations, SchemaVersionError } from "../config-server/store/index.js";
import {
  CaptureMode,
  ComponentRole,
  type Disk,
  Health,
  JobState,
  type RecoveryPoint,
  RecoveryPointType,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
  JobType,
  SyncMode,
} from "../proto/index.js";

let dir: string;
let counter = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "srlab-config-store-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  counter++;
  return join(dir, `cs-${counter}.db`);
}

/** Opens a store, runs fn, always closes. */
function withStore<T>(path: string, fn: (s: ConfigStore) => T, options?: ConfigStoreOptions): T {
  const s = ConfigStore.open(path, options);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

function registerPs(s: ConfigStore, name: string, location = SiteLocation.SITE_LOCATION_ON_PREMISES) {
  return s.registerComponent({
    role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
    name,
    address: `${name}:9443`,
    location,
    version: "1.0.0",
    credentialHash: `hash-${name}`,
  });
}

function registerAgent(s: ConfigStore, name: string) {
  return s.registerComponent({
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name,
    address: `${name}:9500`,
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    version: "1.0.0",
    credentialHash: `hash-${name}`,
  });
}

function disk(id: string, index: number, addedAtSequence = 0): Disk {
  return {
    diskId: id,
    index,
    sizeBytes: 1 << 20,
    imagePath: `/tmp/${id}.img`,
    nbdUri: `nbd://127.0.0.1:10809/${id}`,
    nbdUnixUri: `nbd+unix:///${id}?socket=/tmp/nbd.sock`,
    addedAtSequence,
    blobName: "",
  };
}

function point(machineId: string, id: string, sequence: number, time: Date, type = RecoveryPointType.RECOVERY_POINT_TYPE_CRASH_CONSISTENT): RecoveryPoint {
  return {
    recoveryPointId: id,
    machineId,
    time,
    sequence,
    type,
    tagName: type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT ? `tag-${id}` : "",
    disksCovered: 1,
    disksTotal: 1,
    processed: false,
    consistencyGroup: "",
    metadataMode: false,
    direction: 0,
  };
}

function assertSrlabError(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SrlabError, `expected SrlabError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

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

describe("ConfigStore components", () => {
  test("re-registering the same role and name keeps the id and updates address and version", () => {
    withStore(freshPath(), (s) => {
      const first = registerPs(s, "ps1");
      assert.equal(first.role, ComponentRole.COMPONENT_ROLE_PROCESS_SERVER);
      assert.equal(first.health, Health.HEALTH_NORMAL);
      assert.ok(first.registeredAt instanceof Date);
      const again = s.registerComponent({
        role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
        name: "ps1",
        address: "ps1:9999",
        location: SiteLocation.SITE_LOCATION_ON_PREMISES,
        version: "1.1.0",
        credentialHash: "hash-2",
      });
      assert.equal(again.componentId, first.componentId);
      assert.equal(again.address, "ps1:9999");
      assert.equal(again.version, "1.1.0");
      assert.equal(s.getComponentCredentialHash(first.componentId), "hash-2");
      // Same name, other role: a different component.
      const agent = registerAgent(s, "ps1");
      assert.notEqual(agent.componentId, first.componentId);
      assert.equal(s.findComponentByName(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT, "ps1")?.componentId, agent.componentId);
      assert.equal(s.listComponents().length, 2);
      assert.equal(s.listComponents(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER).length, 1);
    });
  });

  test("heartbeat records health, issues and time", () => {
    withStore(freshPath(), (s) => {
      const ps = registerPs(s, "ps1");
      const at = new Date("2024-05-01T10:00:00Z");
      const issues = [{ health: Health.HEALTH_WARNING, code: "CACHE_FREE_SPACE_LOW", message: "28% free" }];
      const c = s.recordHeartbeat(ps.componentId, Health.HEALTH_WARNING, issues, at);
      assert.equal(c.health, Health.HEALTH_WARNING);
      assert.deepEqual(c.issues, issues);
      assert.equal(c.lastHeartbeat?.getTime(), at.getTime());
      assertSrlabError(() => s.recordHeartbeat("nope", Health.HEALTH_NORMAL, [], at), ErrorCode.NOT_FOUND, /component "nope"/);
    });
  });

  test("invalid registrations are rejected", () => {
    withStore(freshPath(), (s) => {
      assertSrlabError(
        () => s.registerComponent({ role: 99 as ComponentRole, name: "x", address: "", location: 1, version: "", credentialHash: "" }),
        ErrorCode.INVALID_ARGUMENT,
        /role 99/,
      );
      assertSrlabError(
        () => s.registerComponent({ role: 2, name: " ", address: "", location: 1, version: "", credentialHash: "" }),
        ErrorCode.INVALID_ARGUMENT,
        /name must not be empty/,
      );
    });
  });
});

describe("ConfigStore machines and disks", () => {
  test("upsert by name keeps the machine id; disks keep their index and a later disk records its sequence", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm1");
      const m = s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
      assert.equal(m.state, ReplicationState.REPLICATION_STATE_UNPROTECTED);
      assert.equal(s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId }).machineId, m.machineId);
      s.setMachineDisks(m.machineId, [disk("d0", 0)]);
      s.updateMachine(m.machineId, {
        stats: {
          rpoSeconds: 0,
          pendingBytes: 0,
          throughputBytesPerSecond: 0,
          receivedSequence: 41,
          uploadedSequence: 41,
          processedSequence: 40,
          captureMode: CaptureMode.CAPTURE_MODE_DATA,
          bytesSent: 4096,
          capturedSequence: 0,
          processedLagSeconds: 0,
          unprocessedBytes: 0,
          capturedBytes: 0,
          receivedBytes: 4096,
          uploadedBytes: 4096,
          processedBytes: 0,
          dataModeSeconds: 0,
          metadataModeSeconds: 0,
          bitmapModeSeconds: 0,
        },
      });
      // Reported in another order and with a clashing index: d0 stays 0, d1 gets the next free.
      const after = s.setMachineDisks(m.machineId, [disk("d1", 0), disk("d0", 5)]);
      assert.deepEqual(
        after.disks.map((d) => [d.diskId, d.index, d.addedAtSequence]),
        [
          ["d0", 0, 0],
          ["d1", 1, 42],
        ],
      );
      // An explicit added_at_sequence from the agent wins.
      const third = s.setMachineDisks(m.machineId, [disk("d0", 0), disk("d1", 1), disk("d2", 2, 100)]);
      assert.equal(third.disks[2].addedAtSequence, 100);
      assert.equal(s.getMachine("vm1")?.machineId, m.machineId);
      assert.equal(s.getMachine(m.machineId)?.name, "vm1");
      assert.equal(s.getMachine("missing"), undefined);
    });
  });

  test("updateMachine patches only the given fields and validates references", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm1");
      const m = s.upsertMachine({ name: "vm1", agentComponentId: agent.componentId });
      const u = s.updateMachine(m.machineId, {
        state: ReplicationState.REPLICATION_STATE_FAILED_OVER,
        health: Health.HEALTH_CRITICAL,
        issues: [{ health: Health.HEALTH_CRITICAL, code: "AUTH", message: "bad" }],
        policyName: "default",
        direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
        resyncRequired: true,
        resyncReason: "pending changes reached 50% of disk size",
        azureDisks: [disk("a0", 0)],
        testFailoverActive: true,
      });
      assert.equal(u.state, ReplicationState.REPLICATION_STATE_FAILED_OVER);
      assert.equal(u.health, Health.HEALTH_CRITICAL);
      assert.equal(u.issues[0].code, "AUTH");
      assert.equal(u.policyName, "default");
      assert.equal(u.direction, ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES);
      assert.equal(u.resyncRequired, true);
      assert.equal(u.azureDisks[0].diskId, "a0");
      assert.equal(u.testFailoverActive, true);
      const v = s.updateMachine(m.machineId, { testFailoverActive: false });
      assert.equal(v.testFailoverActive, false);
      assert.equal(v.resyncRequired, true);
      assertSrlabError(() => s.updateMachine(m.machineId, { policyName: "nope" }), ErrorCode.NOT_FOUND, /policy "nope"/);
      assertSrlabError(() => s.updateMachine(m.machineId, { processServerId: agent.componentId }), ErrorCode.INVALID_ARGUMENT, /not a process server/);
      assertSrlabError(() => s.updateMachine("ghost", { state: 1 }), ErrorCode.MACHINE_NOT_FOUND, /machine "ghost"/);
    });
  });
});

describe("ConfigStore process server assignment", () => {
  test("picks the least-loaded PS of the requested location", () => {
    withStore(freshPath(), (s) => {
      const a = registerPs(s, "ps-a");
      const b = registerPs(s, "ps-b");
      const az = registerPs(s, "ps-azure", SiteLocation.SITE_LOCATION_AZURE);
      const machines = ["m1", "m2", "m3"].map((n) => s.upsertMachine({ name: n, agentComponentId: registerAgent(s, n).componentId }));
      // Equal load: tie broken by pending bytes from the last heartbeat.
      s.recordHeartbeat(a.componentId, Health.HEALTH_NORMAL, [], new Date(), 5_000);
      s.recordHeartbeat(b.componentId, Health.HEALTH_NORMAL, [], new Date(), 10);
      assert.equal(s.assignProcessServer(machines[0].machineId).componentId, b.componentId);
      // b now has one machine, a none.
      assert.equal(s.assignProcessServer(machines[1].machineId).componentId, a.componentId);
      // 1-1 again; b has fewer pending bytes.
      assert.equal(s.assignProcessServer(machines[2].machineId).componentId, b.componentId);
      assert.deepEqual(
        s.machinesOfProcessServer(b.componentId).map((m) => m.name),
        ["m1", "m3"],
      );
      assert.equal(s.getMachine("m2")?.processServerId, a.componentId);
      // Azure is only chosen when asked for, and never for on-prem.
      assert.equal(s.machinesOfProcessServer(az.componentId).length, 0);
      assert.equal(s.assignProcessServer(machines[0].machineId, SiteLocation.SITE_LOCATION_AZURE).componentId, az.componentId);
      assert.deepEqual(
        s.machinesOfProcessServer(b.componentId).map((m) => m.name),
        ["m3"],
      );
    });
  });

  test("re-assigning a machine does not count it against its current PS", () => {
    withStore(freshPath(), (s) => {
      const a = registerPs(s, "ps-a");
      registerPs(s, "ps-b");
      const m = s.upsertMachine({ name: "m1", agentComponentId: "" });
      s.recordHeartbeat(a.componentId, Health.HEALTH_NORMAL, [], new Date(), 0);
      assert.equal(s.assignProcessServer(m.machineId).componentId, a.componentId);
      assert.equal(s.assignProcessServer(m.machineId).componentId, a.componentId);
    });
  });

  test("no PS of the location is a clear error", () => {
    withStore(freshPath(), (s) => {
      registerPs(s, "ps-a");
      const m = s.upsertMachine({ name: "m1", agentComponentId: "" });
      assertSrlabError(
        () => s.assignProcessServer(m.machineId, SiteLocation.SITE_LOCATION_AZURE),
        ErrorCode.WRONG_STATE,
        /no process server is registered at SITE_LOCATION_AZURE/,
      );
    });
  });
});

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

describe("ConfigStore jobs", () => {
  test("lifecycle: steps start the job, progress is the mean of steps, finish closes it", () => {
    withStore(freshPath(), (s) => {
      const m = s.upsertMachine({ name: "vm", agentComponentId: "" });
      const job = s.createJob({ type: JobType.JOB_TYPE_ENABLE_PROTECTION, machineId: m.machineId, steps: ["Prerequisites", "InitialReplication", "Finalize"] });
      assert.equal(job.state, JobState.JOB_STATE_NOT_STARTED);
      assert.equal(job.startTime, undefined);
      assert.deepEqual(
        job.steps.map((st) => st.state),
        [JobState.JOB_STATE_NOT_STARTED, JobState.JOB_STATE_NOT_STARTED, JobState.JOB_STATE_NOT_STARTED],
      );

      const t1 = new Date("2024-05-01T10:00:00Z");
      let j = s.updateJobStep(job.jobId, "Prerequisites", { state: JobState.JOB_STATE_IN_PROGRESS }, t1);
      assert.equal(j.state, JobState.JOB_STATE_IN_PROGRESS);
      assert.equal(j.startTime?.getTime(), t1.getTime());
      assert.equal(j.steps[0].startTime?.getTime(), t1.getTime());

      j = s.updateJobStep(job.jobId, "Prerequisites", { state: JobState.JOB_STATE_SUCCEEDED, message: "ok" }, new Date(t1.getTime() + 1000));
      assert.equal(j.steps[0].progressPercent, 100);
      assert.equal(j.steps[0].message, "ok");
      assert.equal(j.steps[0].endTime?.getTime(), t1.getTime() + 1000);
      j = s.updateJobStep(job.jobId, "InitialReplication", { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 50 });
      assert.equal(j.progressPercent, 50); // (100 + 50 + 0) / 3
      assert.equal(j.startTime?.getTime(), t1.getTime(), "start time is the first step's");

      s.addJobBytes(job.jobId, 1000);
      s.addJobBytes(job.jobId, 24);
      j = s.finishJob(job.jobId, { state: JobState.JOB_STATE_SUCCEEDED, resultJson: '{"rpoSeconds":3}' });
      assert.equal(j.state, JobState.JOB_STATE_SUCCEEDED);
      assert.equal(j.progressPercent, 100);
      assert.equal(j.bytesSent, 1024);
      assert.equal(j.resultJson, '{"rpoSeconds":3}');
      assert.ok(j.endTime);
      assert.ok(j.steps.every((st) => st.state === JobState.JOB_STATE_SUCCEEDED));

      assertSrlabError(
        () => s.updateJobStep(job.jobId, "Finalize", { state: JobState.JOB_STATE_IN_PROGRESS }),
        ErrorCode.WRONG_STATE,
        /already finished as JOB_STATE_SUCCEEDED/,
      );
      assertSrlabError(() => s.finishJob(job.jobId, { state: JobState.JOB_STATE_FAILED }), ErrorCode.WRONG_STATE, /already finished/);
    });
  });

  test("a failed job keeps steps that never ran NOT_STARTED; undeclared steps are appended", () => {
    withStore(freshPath(), (s) => {
      const job = s.createJob({ type: JobType.JOB_TYPE_RESYNC, machineId: "", steps: ["Compare"] });
      s.updateJobStep(job.jobId, "Compare", { state: JobState.JOB_STATE_IN_PROGRESS, progressPercent: 40 });
      const j1 = s.updateJobStep(job.jobId, "Disk 1", { state: JobState.JOB_STATE_NOT_STARTED });
      assert.deepEqual(
        j1.steps.map((st) => st.name),
        ["Compare", "Disk 1"],
      );
      const j = s.finishJob(job.jobId, { state: JobState.JOB_STATE_FAILED, error: "network down" });
      assert.equal(j.state, JobState.JOB_STATE_FAILED);
      assert.equal(j.error, "network down");
      assert.equal(j.steps[0].state, JobState.JOB_STATE_FAILED);
      assert.equal(j.steps[1].state, JobState.JOB_STATE_NOT_STARTED);
      assert.equal(j.progressPercent, 20);
    });
  });

  test("listJobs is newest first and filters by machine; failUnfinishedJobs fails open jobs", () => {
    withStore(freshPath(), (s) => {
      const m1 = s.upsertMachine({ name: "vm1", agentComponentId: "" });
      const m2 = s.upsertMachine({ name: "vm2", agentComponentId: "" });
      const a = s.createJob({ type: JobType.JOB_TYPE_RESYNC, machineId: m1.machineId, steps: ["x"] });
      const b = s.createJob({ type: JobType.JOB_TYPE_FAILOVER, machineId: m2.machineId, steps: ["x"] });
      const c = s.createJob({ type: JobType.JOB_TYPE_VERIFY, machineId: m1.machineId, steps: ["x"] });
      s.finishJob(a.jobId, { state: JobState.JOB_STATE_SUCCEEDED });
      s.updateJobStep(c.jobId, "x", { state: JobState.JOB_STATE_IN_PROGRESS });
      assert.deepEqual(
        s.listJobs().map((j) => j.type),
        [JobType.JOB_TYPE_VERIFY, JobType.JOB_TYPE_FAILOVER, JobType.JOB_TYPE_RESYNC],
      );
      assert.deepEqual(
        s.listJobs(m1.machineId).map((j) => j.type),
        [JobType.JOB_TYPE_VERIFY, JobType.JOB_TYPE_RESYNC],
      );
      const failed = s.failUnfinishedJobs("configuration server restarted");
      assert.deepEqual(
        failed.map((j) => j.jobId).sort(),
        [b.jobId, c.jobId].sort(),
      );
      assert.ok(failed.every((j) => j.state === JobState.JOB_STATE_FAILED && j.error === "configuration server restarted"));
      assert.equal(s.getJob(a.jobId)?.state, JobState.JOB_STATE_SUCCEEDED);
      assert.equal(s.failUnfinishedJobs("again").length, 0);
    });
  });
});

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

describe("ConfigStore command outbox", () => {
  test("commands stay pending until completed; completion is idempotent", () => {
    withStore(freshPath(), (s) => {
      const agent = registerAgent(s, "vm");
      const other = registerAgent(s, "vm2");
      const job = s.createJob({ type: JobType.JOB_TYPE_APP_CONSISTENT_POINT, machineId: "", steps: ["Tag"] });
      const c1 = s.enqueueCommand(agent.componentId, job.jobId, { insertTag: { machineId: "m", tagName: "t1" } });
      const c2 = s.enqueueCommand(agent.componentId, "", { resumeWrites: { machineId: "m" } });
      s.enqueueCommand(other.componentId, "", { resumeWrites: { machineId: "m2" } });
      const pending = s.pendingCommands(agent.componentId);
      assert.deepEqual(
        pending.map((c) => c.commandId),
        [c1, c2],
      );
      assert.deepEqual(pending[0].payload, { insertTag: { machineId: "m", tagName: "t1" } });
      assert.equal(pending[0].jobId, job.jobId);
      assert.equal(pending[1].jobId, "");

      const done = s.completeCommand(c1, { success: true, resultJson: '{"seq":7}' });
      assert.equal(done.success, true);
      assert.ok(done.completedAt);
      const repeat = s.completeCommand(c1, { success: false, error: "late duplicate" });
      assert.equal(repeat.success, true, "first report wins");
      assert.equal(repeat.resultJson, '{"seq":7}');
      assert.deepEqual(
        s.pendingCommands(agent.componentId).map((c) => c.commandId),
        [c2],
      );
      assertSrlabError(() => s.enqueueCommand("ghost", "", {}), ErrorCode.NOT_FOUND, /component "ghost"/);
      assertSrlabError(() => s.completeCommand("ghost", { success: true }), ErrorCode.NOT_FOUND, /command "ghost"/);
    });
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
