import cron from "node-cron";
import type { Logger } from "../../common/logger.js";
import type { ConfigStore, PlanSchedule } from "../store/index.js";
import type { RehearsalOptions, RehearsalWorkloadSpec } from "./rehearsal-context.js";

/** What a schedule keeps besides its cron expression and cycle. */
export interface ScheduleOptions {
  network: string;
  workload?: RehearsalWorkloadSpec;
  autoApprove: boolean;
}

/** Only the test cycle runs unattended: it leaves production where it was. */
export const SCHEDULABLE_CYCLES = ["test"] as const;

/** Why a schedule is refused, or undefined when it is fine. */
export function scheduleProblem(expression: string, cycle: string): string | undefined {
  if (!(SCHEDULABLE_CYCLES as readonly string[]).includes(cycle)) {
    return `--cycle ${cycle || "(none)"} cannot be scheduled: only ${SCHEDULABLE_CYCLES.join(", ")} runs on a schedule`;
  }
  const fields = expression.trim().split(/\s+/).filter(Boolean);
  if (fields.length < 5 || fields.length > 6) {
    return `--cron "${expression}" needs 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first`;
  }
  if (!cron.validate(expression)) return `--cron "${expression}" is not a valid cron expression`;
  return undefined;
}

/**
 * Runs test rehearsals of plans on their cron schedules (like Zerto's test reminders). The
 * schedules live in the store; `refresh` picks up changes. A schedule that fires while the
 * plan's previous rehearsal still runs is skipped with a warning.
 */
export class RehearsalScheduler {
  private readonly tasks = new Map<string, { key: string; task: ReturnType<typeof cron.schedule> }>();

  constructor(
    private readonly store: ConfigStore,
    private readonly rehearse: (plan: string, o: RehearsalOptions) => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.refresh();
  }

  stop(): void {
    for (const t of this.tasks.values()) t.task.stop();
    this.tasks.clear();
  }

  /** Brings the cron tasks in line with the stored schedules. */
  refresh(): void {
    const schedules = new Map(this.store.listPlanSchedules().map((s) => [s.planName, s] as const));
    for (const [plan, t] of this.tasks) {
      const s = schedules.get(plan);
      if (!s || keyOf(s) !== t.key) {
        t.task.stop();
        this.tasks.delete(plan);
      }
    }
    for (const s of schedules.values()) {
      if (this.tasks.has(s.planName) || scheduleProblem(s.cron, s.cycle)) continue;
      const task = cron.schedule(s.cron, () => this.fire(s));
      this.tasks.set(s.planName, { key: keyOf(s), task });
    }
  }

  /** When the plan's schedule fires next. */
  nextRun(plan: string): Date | undefined {
    return this.tasks.get(plan)?.task.getNextRun() ?? undefined;
  }

  private fire(s: PlanSchedule): void {
    const o = JSON.parse(s.optionsJson || "{}") as Partial<ScheduleOptions>;
    try {
      this.rehearse(s.planName, { cycle: "test", network: o.network ?? "", workload: o.workload, autoApprove: Boolean(o.autoApprove), scheduled: true });
      this.logger.info("scheduled rehearsal started", { plan: s.planName, cron: s.cron });
    } catch (err) {
      this.logger.warn("scheduled rehearsal did not start", { plan: s.planName, cron: s.cron, error: (err as Error).message });
    }
  }
}

const keyOf = (s: PlanSchedule) => `${s.cron}|${s.cycle}|${s.optionsJson}`;
