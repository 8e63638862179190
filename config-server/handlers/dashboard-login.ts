import type { AdminServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type DashboardHandlers = Pick<Handlers<typeof AdminServiceService>, "createDashboardLogin">;

/** `srlab dashboard`: a one-time login link to the web dashboard (admin only, like every AdminService call). */
export function dashboardHandlers(host: ConfigHost): DashboardHandlers {
  return {
    createDashboardLogin: () => {
      const dashboard = host.dashboard;
      if (!dashboard) {
        throw new SrlabError(
          ErrorCode.WRONG_STATE,
          host.dashboardProblem ?? "the dashboard is off on this configuration server (dashboard.enabled: false in its config)",
        );
      }
      const link = dashboard.loginLink();
      return { dashboardUrl: dashboard.url, loginUrl: link.url, expiresAt: link.expiresAt };
    },
  };
}
