import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { SyncResult } from "../proto/index.js";

/** The counts an agent's sync reported; one without its end sequence did not say what it copied. */
export function syncResultOf(reported: Record<string, unknown>, what: string): SyncResult {
  if (typeof reported.endSequence !== "number") throw new SrlabError(ErrorCode.INTERNAL, `${what}: the agent reported no end sequence`);
  return SyncResult.fromJSON(reported);
}
