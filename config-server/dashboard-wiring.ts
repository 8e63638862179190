import * as grpc from "@grpc/grpc-js";
import { srlabVersion } from "../common/version/index.js";
import { DashboardServer } from "./dashboard/index.js";
import { ADMIN_SERVICE_RULE, authorize, type ConfigHost, dashboardActions } from "./handlers/index.js";
import { componentView, machineView } from "./handlers/views.js";

/** The dashboard reads what `srlab status` reads, in process, and the one telemetry sampler. */
export function createConfigDashboard(host: ConfigHost, grpcAddress: () => string): DashboardServer {
  const { options, store } = host;
  const storage =
    options.storage.kind === "directory"
      ? { endpoint: `file://${options.storage.directory}`, detail: "a directory (the speed-work backend)" }
      : { endpoint: blobEndpoint(options.storage.connectionString), detail: `blob container ${options.storage.container}` };
  return new DashboardServer({
    host: options.dashboard.host,
    port: options.dashboard.port,
    sessionMs: options.dashboard.sessionHours * 3_600_000,
    loginLinkMs: options.dashboard.loginLinkSeconds * 1000,
    logger: host.logger,
    actions: options.dashboard.actions ? dashboardActions(host) : undefined,
    isAdminCredential: (credential) => {
      // The same check as every admin RPC, so a change of credential format applies here too.
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${credential}`);
      try {
        return authorize(host, ADMIN_SERVICE_RULE, metadata).kind === "admin";
      } catch {
        return false;
      }
    },
    source: {
      configServer: () => ({ name: options.name, address: grpcAddress(), version: srlabVersion(), storage }),
      components: () => store.listComponents().map((c) => componentView(host, c)),
      machines: () => store.listMachines().map((m) => machineView(host, m)),
      jobs: (machineId) => store.listJobs(machineId),
      points: (machineId) => store.listRecoveryPoints(machineId),
      policies: () => store.listPolicies(),
      actionsEnabled: options.dashboard.actions,
      jobReport: (jobId, name) => {
        try {
          return store.jobReport(jobId, name).content;
        } catch {
          return undefined;
        }
      },
      sampler: host.telemetry,
    },
  });
}

/** Where blobs go, without the account key a connection string carries. */
function blobEndpoint(connectionString: string | undefined): string {
  const parts = new Map((connectionString ?? "").split(";").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const));
  return parts.get("BlobEndpoint") ?? (parts.get("AccountName") ? `https://${parts.get("AccountName")}.blob.core.windows.net` : "Azure");
}
