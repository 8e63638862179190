import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ErrorCode } from "../common/errors/index.js";
import { JobState, JobType } from "../proto/index.js";
import { storePaths, withStore, registerAgent, assertSrlabError } from "./support/config-store.js";

const freshPath = storePaths();

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
      const counts = { endSequence: 3, blocksCompared: 16, blocksSent: 2, zeroBlocksSent: 0, rangesSent: 2, bytesSent: 1024 };
      j = s.finishJob(job.jobId, { state: JobState.JOB_STATE_SUCCEEDED, result: { kind: { $case: "sync", value: counts } } });
      assert.equal(j.state, JobState.JOB_STATE_SUCCEEDED);
      assert.equal(j.progressPercent, 100);
      assert.equal(j.bytesSent, 1024);
      assert.deepEqual(j.result, { kind: { $case: "sync", value: counts } });
      assert.deepEqual(s.getJob(job.jobId)?.result, j.result, "the result reads back from the store");
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

  test("a job ends only with its own kind's result, refused before anything changes", () => {
    withStore(freshPath(), (s) => {
      const job = s.createJob({ type: JobType.JOB_TYPE_RESYNC, machineId: "", steps: ["Compare"] });
      const failover = { kind: { $case: "commitFailover" as const, value: { deletedRecoveryPoints: 1, kept: [] } } };
      assertSrlabError(
        () => s.finishJob(job.jobId, { state: JobState.JOB_STATE_SUCCEEDED, result: failover }),
        ErrorCode.INVALID_ARGUMENT,
        /a Resync job ends with a sync result, not commitFailover/,
      );
      assert.equal(s.getJob(job.jobId)?.state, JobState.JOB_STATE_NOT_STARTED, "the refused finish left the job as it was");
      const cleanup = s.createJob({ type: JobType.JOB_TYPE_DISABLE_PROTECTION, machineId: "", steps: [] });
      assert.equal(s.finishJob(cleanup.jobId, { state: JobState.JOB_STATE_CANCELLED, result: { kind: undefined } }).result, undefined, "an empty result is none");
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

      const tag = { tagName: "t1", sequence: 7, proofs: [], holdMs: 0, held: false, released: false };
      const done = s.completeCommand(c1, { success: true, result: { kind: { $case: "insertTag", value: tag } } });
      assert.equal(done.success, true);
      assert.ok(done.completedAt);
      const repeat = s.completeCommand(c1, { success: false, error: "late duplicate" });
      assert.equal(repeat.success, true, "first report wins");
      assert.deepEqual(repeat.result, { kind: { $case: "insertTag", value: tag } });
      assert.deepEqual(
        s.pendingCommands(agent.componentId).map((c) => c.commandId),
        [c2],
      );
      assertSrlabError(() => s.enqueueCommand("ghost", "", {}), ErrorCode.NOT_FOUND, /component "ghost"/);
      assertSrlabError(() => s.completeCommand("ghost", { success: true }), ErrorCode.NOT_FOUND, /command "ghost"/);
    });
  });
});
