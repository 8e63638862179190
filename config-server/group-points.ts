import { randomUUID } from "node:crypto";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { type Job, type JobResult, JobType, type Machine, ReplicationState, TagPhase } from "../proto/index.js";
import { proofsFromAgent } from "./agent-proofs.js";
import type { CommandBus, CommandOutcome } from "./command-bus.js";
import { resultOf } from "./command-outcome.js";
import { JobRunner } from "./job-runner.js";
import { stateName } from "./protection-jobs.js";
import type { ConfigStore, GroupPoint, ReplicationGroup } from "./store/index.js";

export interface GroupPointsContext {
  store: ConfigStore;
  bus: CommandBus;
  logger: Logger;
  /** How long members may hold writes before the cut is abandoned (and agents release by themselves). */
  holdTimeoutMs: number;
  /** How long to wait for the process servers to report the members' points. */
  pointTimeoutMs: number;
}

const STEPS = {
  prepare: "Prepare members (hold writes)",
  tag: "Insert tags and release writes",
  points: "Wait for the members' recovery points",
} as const;

/**
 * Replication groups and their group-consistent points. A point is cut in two phases: every
 * member runs its freeze hook and holds new writes (queued, never failed); once all hold, each
 * inserts its tag at its current sequence and releases. A write acknowledged on one member before
 * a write on another was issued is therefore on the same side of the cut on both. If any member
 * fails to prepare or to tag, the group point is not committed.
 */
export class GroupPoints {
  private readonly runner: JobRunner;

  constructor(private readonly ctx: GroupPointsContext) {
    this.runner = new JobRunner(ctx.store, ctx.logger);
  }

  createGroup(name: string, machineRefs: readonly string[]): ReplicationGroup {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `group name "${name}" must be 1-63 letters, digits, '.', '_' or '-'`);
    }
    if (machineRefs.length < 1) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `group ${name} needs at least one machine`);
    const ids: string[] = [];
    for (const ref of machineRefs) {
      const m = this.ctx.store.getMachine(ref);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${ref}" (see srlab status)`);
      if (ids.includes(m.machineId)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `machine ${m.name} is listed twice in group ${name}`);
      ids.push(m.machineId);
    }
    return this.ctx.store.putGroup(name, ids);
  }

  /** Starts a group point; the job's result names the group point and each member's sequence. */
  groupPoint(groupName: string, tagName = ""): Job {
    const { store } = this.ctx;
    const group = store.getGroup(groupName);
    if (!group) throw new SrlabError(ErrorCode.NOT_FOUND, `no replication group named "${groupName}" (srlab group create)`);
    const members = this.members(group);
    const name = tagName || `group-${group.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    const job = store.createJob({ type: JobType.JOB_TYPE_GROUP_POINT, machineId: "", steps: [STEPS.prepare, STEPS.tag, STEPS.points] });
    this.runner.run(job, () => this.cut(job, group, members, name));
    return job;
  }

  /** Runs the whole protocol inside `job` (also used by plan runs and rehearsals). */
  async cut(job: Job, group: ReplicationGroup, members: Machine[], tagName: string): Promise<JobResult> {
    const { store } = this.ctx;
    const send = (m: Machine, phase: TagPhase) =>
      this.ctx.bus.send(m.agentComponentId, job.jobId, {
        $case: "insertTag",
        value: { machineId: m.machineId, tagName, consistencyGroup: group.name, phase, holdTimeoutMs: this.ctx.holdTimeoutMs },
      });
    const abortAll = () => Promise.all(members.map((m) => send(m, TagPhase.TAG_PHASE_ABORT).catch(() => undefined)));

    await this.runner.step(job, STEPS.prepare, async () => {
      const outcomes = await withTimeout(Promise.all(members.map((m) => send(m, TagPhase.TAG_PHASE_PREPARE))), this.ctx.holdTimeoutMs);
      const failed = outcomes ? describeFailures(members, outcomes) : `not every member prepared within ${this.ctx.holdTimeoutMs} ms`;
      if (failed) {
        await abortAll();
        throw new SrlabError(ErrorCode.UNAVAILABLE, `group point aborted, nothing tagged: ${failed}`);
      }
      return `${members.length} machines hold their writes`;
    });

    const tagged = await this.runner.step(job, STEPS.tag, async () => {
      const outcomes = await Promise.all(members.map((m) => send(m, TagPhase.TAG_PHASE_COMMIT)));
      const failed = describeFailures(members, outcomes);
      if (failed) {
        await abortAll();
        throw new SrlabError(ErrorCode.UNAVAILABLE, `group point aborted (not committed): ${failed}`);
      }
      return outcomes.map((o, i) => ({ machine: members[i]!, result: resultOf(o, "insertTag", `tag on ${members[i]!.name}`) }));
    });

    const point: GroupPoint = {
      groupPointId: `gp-${randomUUID()}`,
      groupName: group.name,
      tagName,
      appConsistent: true,
      members: tagged.map((t) => ({ machineId: t.machine.machineId, sequence: t.result.sequence })),
      holdMs: Math.max(0, ...tagged.map((t) => t.result.holdMs)),
      createdAt: new Date(),
    };
    for (const t of tagged) store.addProofs(t.machine.machineId, t.result.sequence, proofsFromAgent(t.result.proofs));
    store.addGroupPoint(point);
    this.ctx.logger.info("group point committed", { group: group.name, groupPointId: point.groupPointId, holdMs: point.holdMs });

    const recoveryPointIds = await this.runner.step(job, STEPS.points, () => this.memberPoints(point));
    const { groupPointId, groupName, appConsistent, holdMs, createdAt } = point;
    const withPoints = point.members.map((m) => ({ ...m, recoveryPointId: recoveryPointIds[m.machineId] ?? "" }));
    return { kind: { $case: "groupPoint", value: { groupPointId, group: groupName, tagName, appConsistent, members: withPoints, holdMs, createdAt } } };
  }

  /** Each member's own recovery point for a group point, once its process server reported it. */
  async memberPoints(point: GroupPoint): Promise<Record<string, string>> {
    const { store } = this.ctx;
    const ids: Record<string, string> = {};
    for (const m of point.members) {
      const rp = await this.runner.waitFor(`the recovery point of tag ${point.tagName} on ${m.machineId}`, this.ctx.pointTimeoutMs, () =>
        store.listRecoveryPoints(m.machineId).find((p) => p.tagName === point.tagName && p.sequence === m.sequence),
      );
      ids[m.machineId] = rp.recoveryPointId;
    }
    return ids;
  }

  /** Every member, protected and with its agent connected; one clear line otherwise. */
  members(group: ReplicationGroup): Machine[] {
    return group.machineIds.map((id) => {
      const m = this.ctx.store.getMachine(id);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `group ${group.name}: machine ${id} no longer exists`);
      if (m.state !== ReplicationState.REPLICATION_STATE_PROTECTED) {
        throw new SrlabError(ErrorCode.WRONG_STATE, `group ${group.name}: machine ${m.name} is ${stateName(m.state)}; a group point needs every member protected`);
      }
      if (!this.ctx.bus.isConnected(m.agentComponentId)) {
        throw new SrlabError(ErrorCode.UNAVAILABLE, `group ${group.name}: the agent of ${m.name} is not connected`);
      }
      return m;
    });
  }
}

function describeFailures(members: Machine[], outcomes: CommandOutcome[]): string {
  return outcomes
    .map((o, i) => (o.success ? "" : `${members[i]!.name}: ${o.error}`))
    .filter(Boolean)
    .join("; ");
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
