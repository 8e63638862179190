import type * as grpc from "@grpc/grpc-js";
import { planOperations, rehearsalCycles, rehearsalResults, workloadProfiles } from "../../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { unary } from "../../common/grpc/index.js";
import type { Logger } from "../../common/logger.js";
import { JobState, JobType, type Plan, PlanOperation, type PlanRun, type PlanSchedule as WirePlanSchedule, type PlanServiceServer, type RehearsalWorkload, ResumeAction, SiteLocation } from "../../proto/index.js";
import type { GroupPoints } from "../group-points.js";
import type { ConfigStore, PlanRunRow, PlanSchedule, StoredPlan } from "../store/index.js";
import { JobRunner } from "../job-runner.js";
import { PLAN_OPERATIONS, type PlanOperationName, PlanFileError, type PlanSpec, parsePlan } from "./plan-spec.js";
import { planGroupName, type PlanRunner, planRunResult } from "./plan-runner.js";
import { renderRehearsalHtml } from "./rehearsal-html.js";
import { renderJunit } from "./rehearsal-report.js";
import type { RehearsalScheduler, ScheduleOptions } from "./rehearsal-scheduler.js";
import { scheduleProblem } from "./rehearsal-scheduler.js";
import type { Rehearsals } from "./rehearsal.js";
import type { RehearsalWorkloadSpec } from "./rehearsal-context.js";

export interface PlanServiceContext {
  store: ConfigStore;
  runner: PlanRunner;
  groups: GroupPoints;
  logger: Logger;
  requireAdmin: (call: { metadata: grpc.Metadata }) => void;
  /** ASR allows 7 groups per plan. */
  maxGroups: number;
  rehearsals: Rehearsals;
  scheduler: RehearsalScheduler;
}

const OPERATION_NAME: Record<number, PlanOperationName> = {
  [PlanOperation.PLAN_OPERATION_TEST_FAILOVER]: "test-failover",
  [PlanOperation.PLAN_OPERATION_FAILOVER]: "failover",
  [PlanOperation.PLAN_OPERATION_FAILBACK]: "failback",
  [PlanOperation.PLAN_OPERATION_REPROTECT]: "reprotect",
  [PlanOperation.PLAN_OPERATION_COMMIT]: "commit",
  [PlanOperation.PLAN_OPERATION_CLEANUP]: "cleanup",
};

export function planService(ctx: PlanServiceContext): PlanServiceServer {
  const { store, runner, logger } = ctx;
  const jobs = new JobRunner(store, logger);
  const admin = ctx.requireAdmin;

  const spec = (p: StoredPlan) => JSON.parse(p.specJson) as PlanSpec;
  const toWire = (p: StoredPlan): Plan => {
    const s = spec(p);
    return {
      name: p.name,
      source: p.source,
      specJson: p.specJson,
      groupCount: s.groups.length,
      machineCount: s.groups.reduce((n, g) => n + g.machines.length, 0),
      updatedAt: p.updatedAt,
    };
  };
  const runToWire = (r: PlanRunRow): PlanRun => ({ runId: r.jobId, plan: r.planName, operation: planOperations.parse(r.operation), job: store.getJob(r.jobId) });
  const mustPlan = (name: string) => {
    const p = store.getPlan(name);
    if (!p) throw new SrlabError(ErrorCode.NOT_FOUND, `no recovery plan named "${name}" (srlab plan list)`);
    return p;
  };

  /** The network a test failover goes to: the one named, or the only Azure network there is. */
  const network = (name: string) => {
    if (name) return name;
    const azure = store.listNetworks().filter((n) => n.location !== SiteLocation.SITE_LOCATION_ON_PREMISES);
    if (azure.length === 1) return azure[0]!.name;
    throw new SrlabError(
      ErrorCode.INVALID_ARGUMENT,
      azure.length === 0 ? "a rehearsal needs an isolated network: srlab network create NAME --address-space CIDR" : "say which isolated network to rehearse in: --network NAME",
    );
  };
  const workload = (w: RehearsalWorkload | undefined): RehearsalWorkloadSpec | undefined => {
    if (!w) return undefined;
    if (!(w.rateBytesPerSecond > 0)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "--rate must be above zero");
    const profile = workloadProfiles.name(w.profile);
    return { name: w.name || profile, profile, blockSize: w.blockSize, rateBytesPerSecond: w.rateBytesPerSecond };
  };
  const workloadToWire = (w: RehearsalWorkloadSpec): RehearsalWorkload => ({ ...w, profile: workloadProfiles.parse(w.profile) });
  const scheduleToWire = (sch: PlanSchedule): WirePlanSchedule => {
    const o = JSON.parse(sch.optionsJson || "{}") as Partial<ScheduleOptions>;
    return {
      plan: sch.planName,
      cron: sch.cron,
      cycle: rehearsalCycles.parse(sch.cycle),
      network: o.network ?? "",
      workload: o.workload && workloadToWire(o.workload),
      autoApprove: Boolean(o.autoApprove),
      nextRun: ctx.scheduler.nextRun(sch.planName),
    };
  };

  return {
    applyPlan: unary(logger, (req, call) => {
      admin(call);
      let parsed: PlanSpec;
      try {
        parsed = parsePlan(req.source, req.fileName || "plan.yaml", req.baseDir || process.cwd(), {
          maxGroups: ctx.maxGroups,
          maxMachines: 100,
          machineExists: (name) => store.getMachine(name) !== undefined,
        });
      } catch (err) {
        if (err instanceof PlanFileError) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, err.message);
        throw err;
      }
      const created = !store.getPlan(parsed.name);
      const stored = store.putPlan(parsed.name, req.source, JSON.stringify(parsed));
      // A plan that is a replication group keeps one group of its machines, cut together.
      if (parsed.replicationGroup) ctx.groups.createGroup(planGroupName(parsed.name), parsed.groups.flatMap((g) => g.machines));
      else store.deleteGroup(planGroupName(parsed.name));
      return { plan: toWire(stored), created };
    }),

    listPlans: unary(logger, (_req, call) => {
      admin(call);
      return { plans: store.listPlans().map(toWire) };
    }),

    getPlan: unary(logger, (req, call) => {
      admin(call);
      return { plan: toWire(mustPlan(req.name)) };
    }),

    deletePlan: unary(logger, (req, call) => {
      admin(call);
      mustPlan(req.name);
      store.deletePlan(req.name);
      store.deleteGroup(planGroupName(req.name));
      ctx.scheduler.refresh();
      return {};
    }),

    runPlan: unary(logger, (req, call) => {
      admin(call);
      const plan = mustPlan(req.name);
      const op = OPERATION_NAME[req.operation];
      if (!op) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `say which operation to run: --op ${PLAN_OPERATIONS.join("|")}`);
      const s = spec(plan);
      if (op === "test-failover" && !req.network) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a test failover needs --network: an isolated network");
      }
      const job = store.createPlanRun(
        { type: JobType.JOB_TYPE_RECOVERY_PLAN, machineId: "", steps: runner.steps(s, op) },
        { planName: s.name, operation: op, optionsJson: JSON.stringify(req) },
      );
      jobs.run(job, async () =>
        planRunResult(await runner.execute(job, s, op, { point: req.point, shutdownSource: req.shutdownSource, network: req.network, autoApprove: req.autoApprove })),
      );
      return { run: runToWire(store.getPlanRun(job.jobId)!) };
    }),

    resumePlanRun: unary(logger, (req, call) => {
      admin(call);
      const run = store.getPlanRun(req.runId);
      if (!run) throw new SrlabError(ErrorCode.NOT_FOUND, `no plan run ${req.runId} (srlab plan runs)`);
      const job = store.getJob(run.jobId);
      if (!job || job.state !== JobState.JOB_STATE_IN_PROGRESS) {
        throw new SrlabError(ErrorCode.WRONG_STATE, `run ${req.runId} is not running (${job ? JobState[job.state] : "gone"})`);
      }
      if (req.action === ResumeAction.RESUME_ACTION_UNSPECIFIED) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "say how to resume: approve, --retry, --skip or --cancel");
      if (req.action === ResumeAction.RESUME_ACTION_CANCEL) runner.cancel(run.jobId);
      else runner.resume(run.jobId, { action: req.action, comment: req.comment });
      return { run: runToWire(run) };
    }),

    listPlanRuns: unary(logger, (req, call) => {
      admin(call);
      if (req.plan) mustPlan(req.plan);
      return { runs: store.listPlanRuns(req.plan || undefined).map(runToWire) };
    }),

    rehearse: unary(logger, (req, call) => {
      admin(call);
      const plan = mustPlan(req.name);
      const cycle = rehearsalCycles.name(req.cycle);
      const job = ctx.rehearsals.start(spec(plan), { cycle, network: network(req.network), workload: workload(req.workload), autoApprove: req.autoApprove, scheduled: false });
      return { run: runToWire(store.getPlanRun(job.jobId)!) };
    }),

    getRehearsalReport: unary(logger, (req, call) => {
      admin(call);
      const report = ctx.rehearsals.report(req.runId);
      return {
        reportJson: `${JSON.stringify(report, null, 2)}\n`,
        junitXml: renderJunit(report),
        reportHtml: renderRehearsalHtml(report),
        result: rehearsalResults.parse(report.result),
        serverDir: ctx.rehearsals.reportDir(report.runId),
      };
    }),

    schedulePlan: unary(logger, (req, call) => {
      admin(call);
      mustPlan(req.name);
      if (req.off) {
        if (!store.unschedulePlan(req.name)) throw new SrlabError(ErrorCode.NOT_FOUND, `plan ${req.name} has no schedule`);
        ctx.scheduler.refresh();
        return { schedule: undefined };
      }
      const cycle = rehearsalCycles.name(req.cycle);
      const problem = scheduleProblem(req.cron, cycle);
      if (problem) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, problem);
      const net = network(req.network);
      if (!store.getNetwork(net)) throw new SrlabError(ErrorCode.NOT_FOUND, `no network named "${net}" (srlab network list)`);
      const options: ScheduleOptions = { network: net, workload: workload(req.workload), autoApprove: req.autoApprove };
      store.schedulePlan({ planName: req.name, cron: req.cron.trim(), cycle, optionsJson: JSON.stringify(options) });
      ctx.scheduler.refresh();
      return { schedule: scheduleToWire(store.listPlanSchedules().find((x) => x.planName === req.name)!) };
    }),

    listPlanSchedules: unary(logger, (_req, call) => {
      admin(call);
      return { schedules: store.listPlanSchedules().map(scheduleToWire) };
    }),

  };
}
