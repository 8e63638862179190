import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { CommandResult } from "../proto/index.js";
import type { CommandOutcome } from "./command-bus.js";
import type { CommandResultKind } from "./store/index.js";

/** The value of a CommandResult of kind K (e.g. StopWritesResult for "stopWrites"). */
export type ResultOf<K extends CommandResultKind> = Extract<NonNullable<CommandResult["kind"]>, { $case: K }>["value"];

/**
 * The result of a command that had to succeed: its failure, or an answer without the result its
 * kind produces (the component did not say what it did), fails the step with `what` named.
 */
export function resultOf<K extends CommandResultKind>(outcome: CommandOutcome, kind: K, what: string): ResultOf<K> {
  expectSuccess(outcome, what);
  const result = answeredResult(outcome, kind);
  if (!result) throw new SrlabError(ErrorCode.INTERNAL, `${what}: the component answered without its ${kind} result`);
  return result;
}

/** The result of kind K the outcome carries, if any (for callers that go on without one). */
export function answeredResult<K extends CommandResultKind>(outcome: CommandOutcome, kind: K): ResultOf<K> | undefined {
  const result = outcome.result?.kind;
  const value: unknown = result && result.$case === kind ? result.value : undefined;
  return value as ResultOf<K> | undefined;
}

/** A command that had to succeed, whatever it answered. */
export function expectSuccess(outcome: CommandOutcome, what: string): void {
  if (!outcome.success) throw new SrlabError(ErrorCode.INTERNAL, `${what} failed: ${outcome.error}`);
}
