import {
  type Component,
  ComponentRole,
  type ConfigurationServiceService,
  type MachineReplicationReport,
  ReplicationState,
} from "../../proto/index.js";
import { mergeStats } from "../machine-health.js";
import type { Caller } from "./caller.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type HeartbeatHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "heartbeat">;

/** Heartbeat: a component's own health and its per-machine replication reports. */
export function heartbeatHandlers(host: ConfigHost): HeartbeatHandlers {
  return {
    heartbeat: (req, caller) => {
      const from = componentOf(caller);
      const now = new Date();
      // One commit for the whole heartbeat, without its own fsync: the next heartbeat states all
      // of it again (see ConfigStore.restatedTransaction).
      host.store.restatedTransaction(() => {
        host.store.recordHeartbeat(from.componentId, req.health, req.issues, now);
        for (const report of req.machines) acceptReport(host, from, report, now.getTime());
      });
      host.telemetry.noteHeartbeat(from.componentId, req.componentStats, req.processServerStats);
      // Process servers and master targets verify credentials themselves: they pull the revocation list here.
      const verifier = from.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER || from.role === ComponentRole.COMPONENT_ROLE_MASTER_TARGET;
      if (!verifier) return { serverTime: now, revokedCredentialIds: [], segmentKeyId: "", segmentKeys: [] };
      // Segment keys ride on this credential-authenticated answer, so a rotation reaches them within a heartbeat.
      host.segmentKeys.noteInUse(from.componentId, req.segmentKeyId);
      return {
        serverTime: now,
        revokedCredentialIds: host.credentials.revokedIds(),
        segmentKeyId: host.segmentKeys.currentKeyId,
        segmentKeys: host.segmentKeys.entries(),
      };
    },
  };
}

/** The component behind a caller the authorization rules admitted as a component. */
export function componentOf(caller: Caller): Component {
  if (caller.kind !== "component") throw new Error(`expected a component caller, got ${caller.kind}`);
  return caller.component;
}

/** Folds a component's per-machine report into the machine's state. */
function acceptReport(host: ConfigHost, from: Component, report: MachineReplicationReport, now: number): void {
  const { store } = host;
  const machine = store.getMachine(report.machineId);
  if (!machine) return;
  const reports = host.reports.get(machine.machineId) ?? {};
  if (from.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT && from.componentId === machine.azureAgentComponentId) {
    reports.azureAgent = { report, at: now };
    if (report.disks.length > 0) store.updateMachine(machine.machineId, { azureDisks: report.disks });
  } else if (from.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
    if (machine.agentComponentId !== from.componentId) return;
    reports.agent = { report, at: now };
    if (report.disks.length > 0) store.setMachineDisks(machine.machineId, report.disks);
    if (report.resyncRequired && machine.state === ReplicationState.REPLICATION_STATE_PROTECTED) {
      store.updateMachine(machine.machineId, {
        state: ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
        resyncRequired: true,
        resyncReason: report.resyncReason,
      });
      host.logger.warn("machine needs resync", { machine: machine.name, reason: report.resyncReason });
    }
  } else if (from.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
    if (machine.processServerId !== from.componentId) return;
    reports.processServer = { report, at: now };
    // The process server found its copy untrustworthy (segments or cache missing, storage restarted).
    if (report.resyncRequired && machine.state === ReplicationState.REPLICATION_STATE_PROTECTED) {
      store.updateMachine(machine.machineId, {
        state: ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
        resyncRequired: true,
        resyncReason: report.resyncReason,
      });
      host.logger.warn("machine needs resync", { machine: machine.name, reason: report.resyncReason, from: "process server" });
    }
  }
  host.reports.set(machine.machineId, reports);
  store.updateMachine(machine.machineId, { stats: mergeStats(reports, machine.direction) });
  if (reports.processServer) store.markProcessed(machine.machineId, reports.processServer.report.stats?.processedSequence ?? 0);
}
