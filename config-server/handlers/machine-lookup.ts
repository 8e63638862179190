import type { Machine } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { ConfigStore } from "../store/index.js";

/** The machine an admin request names (id or name), or MACHINE_NOT_FOUND pointing at srlab status. */
export function mustGetMachine(store: ConfigStore, ref: string): Machine {
  const m = store.getMachine(ref);
  if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
  return m;
}
