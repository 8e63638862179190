import { NamedRecoveryPoint } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Recovery points chosen by what they are, as --point and plan files name them. */
export const namedRecoveryPoints = new EnumNames("recovery point", {
  latest: NamedRecoveryPoint.NAMED_RECOVERY_POINT_LATEST,
  "latest-processed": NamedRecoveryPoint.NAMED_RECOVERY_POINT_LATEST_PROCESSED,
  "latest-app-consistent": NamedRecoveryPoint.NAMED_RECOVERY_POINT_LATEST_APP_CONSISTENT,
});
