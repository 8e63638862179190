import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import { jobTypes } from "../../common/enum-names/index.js";
import { type Job, type JobResult, JobState, type JobStep, type JobType } from "../../proto/index.js";
import { checkJobResult, decodeJobResult, encodeJobResult } from "./job-result-codec.js";
import { fromMillis, isEnumValue, nullIfEmpty } from "./row-codec.js";
import { invalid, notFound, wrongState } from "./store-error.js";

/** A step placed in a plan group and on a machine (recovery plan runs). */
export interface StepPlacement {
  name: string;
  group?: string;
  machine?: string;
}

export interface CreateJobInput {
  type: JobType;
  /** Empty for jobs that are not about one machine. */
  machineId: string;
  steps: ReadonlyArray<string | StepPlacement>;
}

export interface JobStepUpdate {
  state: JobState;
  progressPercent?: number;
  message?: string;
  /** A script's output or a manual action's comment. */
  output?: string;
}

export interface FinishJobInput {
  state: JobState.JOB_STATE_SUCCEEDED | JobState.JOB_STATE_FAILED | JobState.JOB_STATE_CANCELLED;
  error?: string;
  /** What the job produced; it must be the result of the job's kind (checkJobResult). */
  result?: JobResult;
}

interface JobRow {
  job_id: string;
  type: string;
  machine_id: string | null;
  state: number;
  progress_percent: number;
  start_time: number | null;
  end_time: number | null;
  error: string;
  bytes_sent: number;
  result_json: string;
  created_at: number;
}

interface StepRow {
  job_id: string;
  ordinal: number;
  name: string;
  state: number;
  progress_percent: number;
  start_time: number | null;
  end_time: number | null;
  message: string;
  group_name: string;
  machine: string;
  output: string;
}

const TERMINAL = new Set<JobState>([
  JobState.JOB_STATE_SUCCEEDED,
  JobState.JOB_STATE_FAILED,
  JobState.JOB_STATE_CANCELLED,
  JobState.JOB_STATE_SKIPPED,
]);

/** States a job itself can end in (a step can also end Skipped). */
const JOB_END_STATES = new Set<JobState>([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

export function isTerminalJobState(s: JobState): boolean {
  return TERMINAL.has(s);
}

function stepFromRow(r: StepRow): JobStep {
  return {
    name: r.name,
    state: r.state,
    progressPercent: r.progress_percent,
    startTime: fromMillis(r.start_time),
    endTime: fromMillis(r.end_time),
    message: r.message,
    group: r.group_name,
    machine: r.machine,
    output: r.output,
  };
}

const clampPercent = (p: number) => Math.min(100, Math.max(0, p));

export class JobsTable {
  private readonly byId;
  private readonly stepsOf;
  private readonly stepByName;
  private readonly all;
  private readonly ofMachine;
  private readonly unfinished;
  private readonly insertJob;
  private readonly insertStep;
  private readonly updateStep;
  private readonly startJob;
  private readonly setProgress;
  private readonly finish;
  private readonly addBytes;
  private readonly reportNames;

  constructor(db: Database.Database) {
    this.byId = db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE job_id = ?");
    this.stepsOf = db.prepare<[string], StepRow>(
      "SELECT * FROM job_steps WHERE job_id = ? ORDER BY ordinal",
    );
    this.stepByName = db.prepare<[string, string], StepRow>(
      "SELECT * FROM job_steps WHERE job_id = ? AND name = ?",
    );
    // rowid breaks ties between jobs created in the same millisecond.
    this.all = db.prepare<[], JobRow>("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC");
    this.ofMachine = db.prepare<[string], JobRow>(
      "SELECT * FROM jobs WHERE machine_id = ? ORDER BY created_at DESC, rowid DESC",
    );
    this.unfinished = db.prepare<[number, number], JobRow>(
      "SELECT * FROM jobs WHERE state IN (?, ?) ORDER BY created_at, rowid",
    );
    this.insertJob = db.prepare(
      `INSERT INTO jobs (job_id, type, machine_id, state, created_at)
       VALUES (@id, @type, @machineId, @state, @now)`,
    );
    this.insertStep = db.prepare(
      `INSERT INTO job_steps (job_id, ordinal, name, state, group_name, machine)
       VALUES (@jobId, (SELECT COALESCE(MAX(ordinal), -1) + 1 FROM job_steps WHERE job_id = @jobId),
         @name, @state, @group, @machine)`,
    );
    this.updateStep = db.prepare(
      `UPDATE job_steps SET state = @state, progress_percent = @progress, message = @message,
         start_time = @start, end_time = @end, output = COALESCE(@output, output)
       WHERE job_id = @jobId AND name = @name`,
    );
    this.startJob = db.prepare<[number, number, string]>(
      "UPDATE jobs SET state = ?, start_time = COALESCE(start_time, ?) WHERE job_id = ?",
    );
    this.setProgress = db.prepare<[string, string]>(
      `UPDATE jobs SET progress_percent =
         COALESCE((SELECT AVG(progress_percent) FROM job_steps WHERE job_id = ?), progress_percent)
       WHERE job_id = ?`,
    );
    this.finish = db.prepare(
      `UPDATE jobs SET state = @state, end_time = @end, error = @error, result_json = @result,
         start_time = COALESCE(start_time, @end),
         progress_percent = CASE WHEN @success = 1 THEN 100 ELSE progress_percent END
       WHERE job_id = @jobId`,
    );
    this.reportNames = db.prepare<[string], { name: string }>("SELECT name FROM job_reports WHERE job_id = ? ORDER BY name");
    this.addBytes = db.prepare<[number, string]>(
      "UPDATE jobs SET bytes_sent = bytes_sent + ? WHERE job_id = ?",
    );
  }

  create(input: CreateJobInput): Job {
    // The column keeps the readable name; an UNSPECIFIED type is refused here.
    const typeName = jobTypes.name(input.type);
    const names = new Set<string>();
    const steps = input.steps.map((s) => (typeof s === "string" ? { name: s } : s));
    for (const { name: s } of steps) {
      if (s === "") throw invalid(`job ${typeName}: step names must not be empty`);
      if (names.has(s)) throw invalid(`job ${typeName}: step "${s}" is listed twice`);
      names.add(s);
    }
    const id = randomUUID();
    this.insertJob.run({
      id,
      type: typeName,
      machineId: nullIfEmpty(input.machineId),
      state: JobState.JOB_STATE_NOT_STARTED,
      now: Date.now(),
    });
    for (const s of steps) {
      this.insertStep.run({ jobId: id, name: s.name, state: JobState.JOB_STATE_NOT_STARTED, group: s.group ?? "", machine: s.machine ?? "" });
    }
    return this.mustGet(id);
  }

  get(id: string): Job | undefined {
    const row = this.byId.get(id);
    return row ? this.fromRow(row) : undefined;
  }

  mustGet(id: string): Job {
    const j = this.get(id);
    if (!j) throw notFound("job", id);
    return j;
  }

  list(machineId?: string): Job[] {
    const rows = machineId === undefined ? this.all.all() : this.ofMachine.all(machineId);
    return rows.map((r) => this.fromRow(r));
  }

  /**
   * A step not declared at creation is appended (workers may add e.g. one step per disk).
   * The first step to leave NOT_STARTED starts the job; job progress is the mean of its steps.
   */
  updateJobStep(jobId: string, stepName: string, update: JobStepUpdate, now: Date): Job {
    const job = this.mustGetUnfinished(jobId);
    if (stepName === "") throw invalid(`job ${jobId}: step name must not be empty`);
    if (!isEnumValue(JobState, update.state) || update.state === JobState.JOB_STATE_UNSPECIFIED) {
      throw invalid(`job ${jobId}: step state ${update.state} is not a known job state`);
    }
    if (update.progressPercent !== undefined && !Number.isFinite(update.progressPercent)) {
      throw invalid(`job ${jobId}: step progress must be a number`);
    }
    let step = this.stepByName.get(jobId, stepName);
    if (!step) {
      this.insertStep.run({ jobId, name: stepName, state: JobState.JOB_STATE_NOT_STARTED, group: "", machine: "" });
      step = this.stepByName.get(jobId, stepName) as StepRow;
    }
    const t = now.getTime();
    const running = update.state !== JobState.JOB_STATE_NOT_STARTED;
    const terminal = isTerminalJobState(update.state);
    let progress = clampPercent(update.progressPercent ?? step.progress_percent);
    if (update.state === JobState.JOB_STATE_SUCCEEDED) progress = 100;
    this.updateStep.run({
      jobId,
      name: stepName,
      state: update.state,
      progress,
      message: update.message ?? step.message,
      start: step.start_time ?? (running ? t : null),
      end: terminal ? (step.end_time ?? t) : null,
      output: update.output ?? null,
    });
    if (running && job.state === JobState.JOB_STATE_NOT_STARTED) {
      this.startJob.run(JobState.JOB_STATE_IN_PROGRESS, t, jobId);
    }
    this.setProgress.run(jobId, jobId);
    return this.mustGet(jobId);
  }

  /**
   * Steps still open are closed with the job: on success they succeed; otherwise running
   * steps take the job's end state and steps that never ran stay NOT_STARTED.
   */
  finishJob(jobId: string, input: FinishJobInput, now: Date): Job {
    const job = this.mustGetUnfinished(jobId);
    if (!JOB_END_STATES.has(input.state)) {
      throw invalid(`job ${jobId}: finish state must be SUCCEEDED, FAILED or CANCELLED, got ${JobState[input.state] ?? input.state}`);
    }
    // Checked before any step changes, so a wrong result leaves the job as it was.
    const result = encodeJobResult(checkJobResult(job.type, input.result));
    const t = now.getTime();
    for (const s of job.steps) {
      if (isTerminalJobState(s.state)) continue;
      const success = input.state === JobState.JOB_STATE_SUCCEEDED;
      if (!success && s.state === JobState.JOB_STATE_NOT_STARTED) continue;
      this.updateStep.run({
        jobId,
        name: s.name,
        state: input.state,
        progress: success ? 100 : s.progressPercent,
        message: s.message,
        start: s.startTime?.getTime() ?? t,
        end: t,
        output: null,
      });
    }
    this.setProgress.run(jobId, jobId);
    this.finish.run({
      jobId,
      state: input.state,
      success: input.state === JobState.JOB_STATE_SUCCEEDED ? 1 : 0,
      end: t,
      error: input.error ?? "",
      result,
    });
    return this.mustGet(jobId);
  }

  addJobBytes(jobId: string, n: number): Job {
    if (!Number.isInteger(n) || n < 0) throw invalid(`job ${jobId}: byte count must be a non-negative integer, got ${n}`);
    if (this.addBytes.run(n, jobId).changes === 0) throw notFound("job", jobId);
    return this.mustGet(jobId);
  }

  failUnfinished(reason: string, now: Date): Job[] {
    const open = this.unfinished.all(JobState.JOB_STATE_NOT_STARTED, JobState.JOB_STATE_IN_PROGRESS);
    return open.map((r) =>
      this.finishJob(r.job_id, { state: JobState.JOB_STATE_FAILED, error: reason }, now),
    );
  }

  private mustGetUnfinished(jobId: string): Job {
    const job = this.mustGet(jobId);
    if (isTerminalJobState(job.state)) {
      throw wrongState(`job ${jobId} (${jobTypes.name(job.type)}) already finished as ${JobState[job.state]}; it cannot be updated`,
      );
    }
    return job;
  }

  private fromRow(r: JobRow): Job {
    return {
      jobId: r.job_id,
      type: jobTypes.parse(r.type),
      machineId: r.machine_id ?? "",
      state: r.state,
      steps: this.stepsOf.all(r.job_id).map(stepFromRow),
      progressPercent: r.progress_percent,
      startTime: fromMillis(r.start_time),
      endTime: fromMillis(r.end_time),
      error: r.error,
      bytesSent: r.bytes_sent,
      result: decodeJobResult(r.result_json),
      reports: this.reportNames.all(r.job_id).map((x) => x.name),
    };
  }
}
