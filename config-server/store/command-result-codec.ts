import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { CommandResult, WatchCommandsResponse } from "../../proto/index.js";

/** A command's kind: the case of WatchCommandsResponse.command. */
export type CommandKind = NonNullable<WatchCommandsResponse["command"]>["$case"];
/** A result's kind: the case of CommandResult.kind. */
export type CommandResultKind = NonNullable<CommandResult["kind"]>["$case"];

/**
 * The result each command kind answers with. Every command is listed, so a new command kind does
 * not compile until it is decided what it answers.
 */
const RESULT_OF: Record<CommandKind, CommandResultKind | undefined> = {
  assignment: "assignment",
  startSync: "startSync",
  insertTag: "insertTag",
  workload: "workload",
  stopWrites: "stopWrites",
  resumeWrites: "resumeWrites",
  renewCredential: "renewCredential",
  addDisk: "addDisk",
  removeDisk: "removeDisk",
  switchDisks: "switchDisks",
  releaseMachine: "releaseMachine",
  adoptMachine: "adoptMachine",
  unprotect: "unprotect",
  fingerprintDisks: "fingerprintDisks",
  stopWorkload: "stopWorkload",
};

/** The kind of a stored command payload (WatchCommandsResponse JSON); undefined for an empty one. */
export function commandKindOf(payload: unknown): CommandKind | undefined {
  return WatchCommandsResponse.fromJSON(payload).command?.$case;
}

/**
 * A result is refused unless it is the one its command produces: a stop-writes command cannot be
 * answered with a sync's counts, and an empty result is no result (not a blank one stored as if
 * it were).
 */
export function checkCommandResult(commandId: string, kind: CommandKind | undefined, result: CommandResult | undefined): CommandResult | undefined {
  if (!result?.kind) return undefined;
  const expected = kind ? RESULT_OF[kind] : undefined;
  if (result.kind.$case !== expected) {
    throw new SrlabError(
      ErrorCode.INVALID_ARGUMENT,
      `command ${commandId} is ${kind ?? "empty"}: ${expected ? `its result is of kind ${expected}` : "it produces no result"}, not ${result.kind.$case}`,
    );
  }
  return result;
}

/** The stored text of a result: its canonical JSON, "" for none. */
export function encodeCommandResult(result: CommandResult | undefined): string {
  return result?.kind ? JSON.stringify(CommandResult.toJSON(result)) : "";
}

/** A stored result back; text that is no CommandResult (or none) reads as none. */
export function decodeCommandResult(text: string | null | undefined): CommandResult | undefined {
  if (!text) return undefined;
  try {
    const result = CommandResult.fromJSON(JSON.parse(text));
    return result.kind ? result : undefined;
  } catch {
    return undefined;
  }
}

