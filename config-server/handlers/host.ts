import type { Logger } from "../../common/logger.js";
import type { ClientJobLeases } from "../client-job-leases.js";
import type { CommandBus } from "../command-bus.js";
import type { CredentialAuthority } from "../credential-authority.js";
import type { FailbackJobs } from "../failback-jobs.js";
import type { FailoverJobs } from "../failover-jobs.js";
import type { JoinTokens } from "../join-tokens.js";
import type { MachineOperations } from "../machine-operations.js";
import type { MachineReports } from "../machine-health.js";
import type { ConfigServerOptions } from "../options.js";
import type { ProtectionJobs } from "../protection-jobs.js";
import type { ResyncScheduler } from "../resync-scheduler.js";
import type { SegmentKeys } from "../segment-keys.js";
import type { ConfigStore } from "../store/index.js";
import type { TelemetrySampler } from "../telemetry/index.js";

/**
 * What the configuration server's handlers need from the daemon: persistence (store), the
 * component command streams (bus), the job runners and the deployment's secrets. Handlers hold
 * no state of their own; everything they change goes through this host.
 */
export interface ConfigHost {
  options: ConfigServerOptions;
  store: ConfigStore;
  bus: CommandBus;
  jobs: ProtectionJobs;
  /** Disable protection, switch process server. */
  operations: MachineOperations;
  failovers: FailoverJobs;
  failbacks: FailbackJobs;
  logger: Logger;
  /** Signs and checks credentials (the private key stays inside). */
  credentials: CredentialAuthority;
  joinTokens: JoinTokens;
  /** The segment keys (derived from the deployment secret, which no component receives). */
  segmentKeys: SegmentKeys;
  /** The latest per-machine reports of agents and process servers (kept in memory only). */
  reports: Map<string, MachineReports>;
  /** The time-series sampler: heartbeats hand it each daemon's own figures. */
  telemetry: TelemetrySampler;
  /** The web dashboard, when it is on: mints one-time login links for `srlab dashboard`. */
  dashboard?: { readonly url: string; loginLink(): { url: string; expiresAt: Date } };
  /** Why the dashboard is not running although it is enabled (its port was taken). */
  dashboardProblem?: string;
  /** Leases of the jobs the CLI runs: its updates renew them, a lapsed one fails the job. */
  clientJobs?: Pick<ClientJobLeases, "renew" | "release" | "leaseSeconds">;
  /** When each machine's next resync runs (status). */
  resyncs?: Pick<ResyncScheduler, "nextResync">;
}
