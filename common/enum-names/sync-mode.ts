import { SyncMode } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** How a sync copies disks, as job steps and logs name it. */
export const syncModes = new EnumNames("sync mode", {
  initial: SyncMode.SYNC_MODE_INITIAL,
  resync: SyncMode.SYNC_MODE_RESYNC,
});
