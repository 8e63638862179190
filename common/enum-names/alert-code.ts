import { AlertCode } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Process-server alert codes as the dashboard, load-test samples and summaries show them. */
export const alertCodes = new EnumNames("alert code", {
  CACHE_FREE_SPACE: AlertCode.ALERT_CODE_CACHE_FREE_SPACE,
  UPLOAD_BACKLOG: AlertCode.ALERT_CODE_UPLOAD_BACKLOG,
  CPU: AlertCode.ALERT_CODE_CPU,
  MEMORY: AlertCode.ALERT_CODE_MEMORY,
});
