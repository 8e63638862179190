import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import type { CommandResult as TypedResult } from "../../proto/index.js";
import { checkCommandResult, commandKindOf, decodeCommandResult, encodeCommandResult } from "./command-result-codec.js";
import { fromMillis, nullIfEmpty } from "./row-codec.js";
import { invalid, notFound } from "./store-error.js";

/** A command waiting for (or already answered by) a component. */
export interface StoredCommand {
  commandId: string;
  componentId: string;
  /** Empty when the command belongs to no job. */
  jobId: string;
  payload: unknown;
  createdAt: Date;
  /** Undefined while pending. */
  completedAt: Date | undefined;
  success: boolean | undefined;
  error: string;
  /** What the command produced, of its own kind; undefined while pending, on failure or when nothing. */
  result: TypedResult | undefined;
}

/** A component's answer to a command. */
export interface CommandAnswer {
  success: boolean;
  error?: string;
  result?: TypedResult;
}

interface CommandRow {
  seq: number;
  command_id: string;
  component_id: string;
  job_id: string | null;
  payload_json: string;
  created_at: number;
  completed_at: number | null;
  success: number | null;
  error: string;
  /** CommandResult as canonical JSON; "" for none. */
  result: string;
}

function commandFromRow(r: CommandRow): StoredCommand {
  return {
    commandId: r.command_id,
    componentId: r.component_id,
    jobId: r.job_id ?? "",
    payload: JSON.parse(r.payload_json),
    createdAt: new Date(r.created_at),
    completedAt: fromMillis(r.completed_at),
    success: r.success === null ? undefined : r.success === 1,
    error: r.error,
    result: decodeCommandResult(r.result),
  };
}

/**
 * Durable outbox: a command stays pending across CS restarts until the component reports its
 * result, so it is redelivered after a reconnect. Components must treat commands idempotently.
 */
export class CommandsTable {
  private readonly byId;
  private readonly pending;
  private readonly insert;
  private readonly completeRow;

  constructor(db: Database.Database) {
    this.byId = db.prepare<[string], CommandRow>("SELECT * FROM commands WHERE command_id = ?");
    this.pending = db.prepare<[string], CommandRow>(
      "SELECT * FROM commands WHERE component_id = ? AND completed_at IS NULL ORDER BY seq",
    );
    this.insert = db.prepare(
      `INSERT INTO commands (command_id, component_id, job_id, payload_json, created_at)
       VALUES (@id, @componentId, @jobId, @payload, @now)`,
    );
    this.completeRow = db.prepare(
      `UPDATE commands SET completed_at = @now, success = @success, error = @error,
         result = @result
       WHERE command_id = @id AND completed_at IS NULL`,
    );
  }

  enqueue(componentId: string, jobId: string, payload: object, now: Date): string {
    let json: string;
    try {
      json = JSON.stringify(payload);
    } catch (e) {
      throw invalid(`command payload for component ${componentId} is not serialisable: ${(e as Error).message}`);
    }
    if (json === undefined) throw invalid(`command payload for component ${componentId} is empty`);
    const id = randomUUID();
    this.insert.run({ id, componentId, jobId: nullIfEmpty(jobId), payload: json, now: now.getTime() });
    return id;
  }

  pendingFor(componentId: string): StoredCommand[] {
    return this.pending.all(componentId).map(commandFromRow);
  }

  get(id: string): StoredCommand | undefined {
    const row = this.byId.get(id);
    return row ? commandFromRow(row) : undefined;
  }

  /**
   * A repeated report (a retransmit) keeps the first result. A result of another kind than the
   * command's is refused (INVALID_ARGUMENT) and the command stays as it was.
   */
  complete(id: string, answer: CommandAnswer, now: Date): StoredCommand {
    const row = this.byId.get(id);
    if (!row) throw notFound("command", id);
    const result = checkCommandResult(id, commandKindOf(JSON.parse(row.payload_json)), answer.result);
    this.completeRow.run({
      id,
      now: now.getTime(),
      success: answer.success ? 1 : 0,
      error: answer.error ?? "",
      result: encodeCommandResult(result),
    });
    return this.get(id) as StoredCommand;
  }
}
