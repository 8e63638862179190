import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { unary } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { GroupServiceServer, GroupPoint as WireGroupPoint, ReplicationGroup as WireGroup } from "../proto/index.js";
import type { GroupPoints } from "./group-points.js";
import type { ConfigStore, GroupPoint, ReplicationGroup } from "./store/index.js";

export function groupService(ctx: {
  store: ConfigStore;
  groups: GroupPoints;
  logger: Logger;
  requireAdmin: (call: { metadata: grpc.Metadata }) => void;
}): GroupServiceServer {
  const { store, groups, logger } = ctx;
  const admin = ctx.requireAdmin;
  const name = (id: string) => store.getMachine(id)?.name ?? id;
  const toWire = (g: ReplicationGroup): WireGroup => ({ name: g.name, machines: g.machineIds.map(name) });
  const pointToWire = (p: GroupPoint): WireGroupPoint => ({
    groupPointId: p.groupPointId,
    group: p.groupName,
    tagName: p.tagName,
    appConsistent: p.appConsistent,
    members: p.members.map((m) => ({
      machine: name(m.machineId),
      sequence: m.sequence,
      recoveryPointId: store.listRecoveryPoints(m.machineId).find((rp) => rp.tagName === p.tagName && rp.sequence === m.sequence)?.recoveryPointId ?? "",
    })),
    holdMs: p.holdMs,
    time: p.createdAt,
  });
  return {
    createGroup: unary(logger, (req, call) => {
      admin(call);
      return { group: toWire(groups.createGroup(req.name, req.machines)) };
    }),
    listGroups: unary(logger, (_req, call) => {
      admin(call);
      return { groups: store.listGroups().map(toWire) };
    }),
    deleteGroup: unary(logger, (req, call) => {
      admin(call);
      if (!store.deleteGroup(req.name)) throw new SrlabError(ErrorCode.NOT_FOUND, `no replication group named "${req.name}"`);
      return {};
    }),
    createGroupPoint: unary(logger, (req, call) => {
      admin(call);
      return { job: groups.groupPoint(req.group, req.tagName) };
    }),
    listGroupPoints: unary(logger, (req, call) => {
      admin(call);
      if (!store.getGroup(req.group)) throw new SrlabError(ErrorCode.NOT_FOUND, `no replication group named "${req.group}"`);
      return { points: store.listGroupPoints(req.group).map(pointToWire) };
    }),
  };
}
