import type { Logger } from "../../common/logger.js";
import type { Job, TelemetrySample, VerifyResult, VerifyTarget, WorkloadCommand } from "../../proto/index.js";
import type { GroupPoints } from "../group-points.js";
import type { ConfigStore } from "../store/index.js";
import type { PlanRunner } from "./plan-runner.js";
import type { RehearsalCycle } from "./rehearsal-report.js";

/** The generated load a rehearsal runs on every machine. */
export interface RehearsalWorkloadSpec {
  name: string;
  profile: string;
  blockSize: number;
  rateBytesPerSecond: number;
}

/** How one rehearsal runs: which cycle, into which network, under which load. */
export interface RehearsalOptions {
  cycle: RehearsalCycle;
  network: string;
  workload?: RehearsalWorkloadSpec;
  autoApprove: boolean;
  scheduled: boolean;
}

/** What the configuration server gives the rehearsals: its store, the plan runner and the jobs they start. */
export interface RehearsalContext {
  store: ConfigStore;
  runner: PlanRunner;
  groups: GroupPoints;
  logger: Logger;
  /** Starts the jobs a rehearsal waits for. */
  jobs: {
    verify(machine: string, target: VerifyTarget, recoveryPointId?: string): Job;
    appConsistentPoint(machine: string, tagName: string): Job;
    /** Generated writes; `inAzure` on the machine running in Azure (its failed-over disks). */
    workload(machine: string, spec: WorkloadCommand, inAzure?: boolean): Job;
  };
  /** The full cycle's Azure side: whether a machine runs there, its disks' state, the failback's proof. */
  azure: {
    /** The machine's agent in Azure is registered and connected (the lab starts it after the commit). */
    running(machine: string): boolean;
    /** The fingerprint of each Azure disk (the failed-over page blobs) as it is now. */
    fingerprints(machine: string): Promise<Array<{ index: number; fingerprint: string }>>;
    /** Each on-premises disk against the Azure disk it failed back from. */
    verifyFailback(machine: string): Promise<VerifyResult>;
  };
  /** The configuration server's telemetry samples since a time (the sampler TelemetryService serves). */
  samples(since: Date): TelemetrySample[];
  /** Each run's report files go to <reportRoot>/<runId>/. */
  reportRoot: string;
  /** How long replication may take to catch up after the cleanup before it counts as unhealthy. */
  healthyTimeoutMs: number;
  /** How long the full cycle waits for a machine's agent in Azure to connect after the commit. */
  azureStartTimeoutMs: number;
}
