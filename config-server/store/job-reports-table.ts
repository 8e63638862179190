import type Database from "better-sqlite3";
import { invalid, notFound } from "./store-error.js";

/** A plain file name, so a report name can never reach outside the job's own set of files. */
const REPORT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Largest report kept: a long load test's report.html with every sample stays well below it. */
export const MAX_JOB_REPORT_BYTES = 32 * 1024 * 1024;

export interface JobReport {
  name: string;
  content: Buffer;
  createdAt: Date;
}

/** Report files kept with jobs (report.html, report.json, junit.xml); the dashboard links to them. */
export class JobReportsTable {
  private readonly upsert;
  private readonly byName;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO job_reports (job_id, name, content, created_at) VALUES (@jobId, @name, @content, @now)
       ON CONFLICT (job_id, name) DO UPDATE SET content = excluded.content, created_at = excluded.created_at`,
    );
    this.byName = db.prepare<[string, string], { name: string; content: Buffer; created_at: number }>(
      "SELECT name, content, created_at FROM job_reports WHERE job_id = ? AND name = ?",
    );
  }

  /** The job must exist (checked by the caller inside the same transaction). */
  attach(jobId: string, name: string, content: Buffer, now: Date): void {
    if (!REPORT_NAME.test(name)) throw invalid(`report name "${name}" must be a plain file name (letters, digits, '.', '-', '_')`);
    if (content.length > MAX_JOB_REPORT_BYTES) throw invalid(`report ${name} is ${content.length} bytes; at most ${MAX_JOB_REPORT_BYTES} are kept`);
    this.upsert.run({ jobId, name, content, now: now.getTime() });
  }

  mustGet(jobId: string, name: string): JobReport {
    const row = this.byName.get(jobId, name);
    if (!row) throw notFound("job report", `${jobId}/${name}`);
    return { name: row.name, content: row.content, createdAt: new Date(row.created_at) };
  }
}
