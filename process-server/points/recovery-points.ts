import type { Logger } from "../../common/logger.js";
import type { BlobStore } from "../../common/storage/index.js";
import type { ReplicationPolicy } from "../../proto/index.js";
import type { Applier } from "../pipeline/index.js";
import { every, type Repeating } from "../../common/schedule/index.js";
import type { Machine } from "../machine.js";
import type { PointStore } from "./point-store.js";
import { pruneAppliedLog, pruneExpired } from "./retention.js";
import type { LogLocation } from "../../common/storage-layout/index.js";

/** How often retention runs when the policy makes no crash-consistent points. */
const RETENTION_ONLY_PERIOD_SECONDS = 60;

export interface RecoveryPointSchedulerOptions {
  machine: Machine;
  applier: Applier;
  points: PointStore;
  store: BlobStore;
  logger: Logger;
  /** This process server's failback log, when the machine ever replicated back to on-premises. */
  failbackLog: () => LogLocation | undefined;
}

/**
 * Crash-consistent points on the policy's cadence (taken by the applier at its processed
 * position, skipped when nothing changed since the last point), followed by retention.
 */
export class RecoveryPointScheduler {
  private repeating?: Repeating;
  private stopped = false;

  constructor(private readonly o: RecoveryPointSchedulerOptions) {}

  /** (Re)starts the schedule for a policy; no policy means no schedule. */
  apply(policy: ReplicationPolicy | undefined): void {
    this.repeating?.stop();
    this.repeating = undefined;
    if (!policy || this.stopped) return;
    const frequency = policy.crashConsistentFrequencySeconds;
    const period = frequency > 0 ? frequency : RETENTION_ONLY_PERIOD_SECONDS;
    this.repeating = every(period, () => this.tick(policy, frequency > 0));
    this.o.logger.info("recovery point schedule set", {
      machineId: this.o.machine.id,
      crashConsistentSeconds: frequency,
      retentionSeconds: policy.recoveryPointRetentionSeconds,
    });
  }

  stop(): void {
    this.stopped = true;
    this.repeating?.stop();
  }

  /** One scheduled round; exposed for tests and for the CLI-driven "point now" path. */
  async tick(policy: ReplicationPolicy, crashPoint = true): Promise<void> {
    const { machine, applier, logger } = this.o;
    // Points and their retention belong to the on-premises → Azure direction only; while failing
    // back the replica and its points are the forward process server's and stay untouched.
    const forward = machine.epochs.current.direction === "to-azure";
    try {
      if (crashPoint && forward) await applier.requestCrashPoint();
      const failbackLog = this.o.failbackLog();
      if (policy.recoveryPointRetentionSeconds > 0 && failbackLog) {
        await pruneAppliedLog({
          log: failbackLog,
          processedSequence: machine.processed.value,
          retentionSeconds: policy.recoveryPointRetentionSeconds,
          store: this.o.store,
          logger,
        });
      }
      if (policy.recoveryPointRetentionSeconds > 0 && forward) {
        await pruneExpired({
          machineId: machine.id,
          processedSequence: machine.processed.value,
          retentionSeconds: policy.recoveryPointRetentionSeconds,
          store: this.o.store,
          points: this.o.points,
          logger,
        });
      }
    } catch (err) {
      if (!this.stopped) logger.warn("recovery point round failed", { machineId: machine.id, error: (err as Error).message });
    }
  }
}
