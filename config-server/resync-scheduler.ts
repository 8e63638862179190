import cron from "node-cron";
import type { Logger } from "../common/logger.js";
import { type Machine, type ReplicationPolicy, ReplicationState } from "../proto/index.js";
import type { ProtectionJobs } from "./protection-jobs.js";
import type { ConfigStore } from "./store/index.js";
import { IMMEDIATE_RESYNC } from "./store/index.js";

/** How often machines waiting for an immediate resync are looked at (and a failed start retried). */
const TICK_MS = 1_000;
/** A resync that could not start (agent down, say) is tried again after this long. */
const RETRY_MS = 5_000;

/**
 * Starts resync for machines in RESYNC_REQUIRED: at once for policies whose window is
 * "immediate", else at the next run of the policy's cron window (outside office hours by
 * default). Also answers when a machine's next resync will run, for status.
 */
export class ResyncScheduler {
  private readonly windows = new Map<string, { schedule: string; task: ReturnType<typeof cron.schedule> }>();
  private readonly lastAttempt = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: ConfigStore,
    private readonly jobs: ProtectionJobs,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const w of this.windows.values()) w.task.stop();
    this.windows.clear();
  }

  /** When the machine's next resync runs: now for "immediate", the window's next run, or undefined when none is due. */
  nextResync(machine: Machine, now = new Date()): Date | undefined {
    if (machine.state !== ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED) return undefined;
    const policy = machine.policyName ? this.store.getPolicy(machine.policyName) : undefined;
    if (!policy) return undefined;
    if (policy.resyncSchedule === IMMEDIATE_RESYNC) {
      const last = this.lastAttempt.get(machine.machineId);
      return last ? new Date(Math.max(now.getTime(), last + RETRY_MS)) : now;
    }
    return this.window(policy)?.getNextRun() ?? undefined;
  }

  private tick(): void {
    const policies = new Map(this.store.listPolicies().map((p) => [p.name, p] as const));
    for (const p of policies.values()) this.window(p);
    for (const [name, w] of this.windows) {
      if (policies.get(name)?.resyncSchedule !== w.schedule) {
        w.task.stop();
        this.windows.delete(name);
      }
    }
    const now = Date.now();
    for (const m of this.store.listMachines()) {
      if (m.state !== ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED) continue;
      if (policies.get(m.policyName)?.resyncSchedule !== IMMEDIATE_RESYNC) continue;
      if (now - (this.lastAttempt.get(m.machineId) ?? 0) < RETRY_MS) continue;
      this.begin(m, "resync window: immediate");
    }
  }

  /** The cron task of a policy's window, created on first use (policies can be added any time). */
  private window(policy: ReplicationPolicy): ReturnType<typeof cron.schedule> | undefined {
    const schedule = policy.resyncSchedule;
    if (!schedule || schedule === IMMEDIATE_RESYNC || !cron.validate(schedule)) return undefined;
    const known = this.windows.get(policy.name);
    if (known?.schedule === schedule) return known.task;
    known?.task.stop();
    const task = cron.schedule(schedule, () => {
      for (const m of this.store.listMachines()) {
        if (m.policyName === policy.name && m.state === ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED) this.begin(m, "scheduled resync window");
      }
    });
    this.windows.set(policy.name, { schedule, task });
    return task;
  }

  private begin(m: Machine, reason: string): void {
    this.lastAttempt.set(m.machineId, Date.now());
    try {
      this.jobs.startResync(m.machineId, reason);
    } catch (err) {
      this.logger.warn("resync not started", { machine: m.name, reason, error: (err as Error).message });
    }
  }
}
