import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import {
  type Component,
  ComponentRole,
  type ConfigurationServiceServer,
  Health,
  JobState,
  type Machine,
  type MachineReplicationReport,
  type RegisterResponse,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
  type WatchCommandsResponse,
} from "../proto/index.js";
import { deriveSegmentKey } from "../common/segment/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { credentialOf, issueCredential, serverStream, unary, verifyCredential } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { CommandBus } from "./command-bus.js";
import { machineHealth, mergeStats, type MachineReports } from "./machine-health.js";
import type { ConfigServerOptions } from "./options.js";
import type { FailbackJobs } from "./failback-jobs.js";
import type { FailoverJobs } from "./failover-jobs.js";
import { circuitConflict, ipInCidr, validateNetwork } from "./network-rules.js";
import { type ProtectionJobs, stateName } from "./protection-jobs.js";
import type { ConfigStore } from "./store/index.js";

export interface ServiceContext {
  options: ConfigServerOptions;
  store: ConfigStore;
  bus: CommandBus;
  jobs: ProtectionJobs;
  failovers: FailoverJobs;
  failbacks: FailbackJobs;
  logger: Logger;
  credentialKey: Buffer;
  deploymentSecret: string;
  segmentKeyId: string;
  reports: Map<string, MachineReports>;
}

/** Who is calling: the admin (CLI) or a registered component. */
type Caller = { kind: "admin" } | { kind: "component"; component: Component; machineId?: string };

const ROLE_SUBJECT: Partial<Record<ComponentRole, string>> = {
  [ComponentRole.COMPONENT_ROLE_PROCESS_SERVER]: "process-server",
  [ComponentRole.COMPONENT_ROLE_MASTER_TARGET]: "master-target",
};

export function configurationService(ctx: ServiceContext): ConfigurationServiceServer {
  const { store, bus, jobs, logger } = ctx;

  const caller = (call: { metadata: grpc.Metadata }): Caller => {
    const credential = credentialOf(call.metadata);
    if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
    const subject = verifyCredential(ctx.credentialKey, credential);
    if (!subject) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "credential not issued by this configuration server; register again");
    if (subject === "admin") return { kind: "admin" };
    const [kind, id] = subject.split("/");
    if (kind === "agent") {
      const machine = store.getMachine(id!);
      const inAzure = subject.endsWith("/azure");
      const component = machine && store.getComponent(inAzure ? machine.azureAgentComponentId : machine.agentComponentId);
      if (!machine || !component) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "unknown machine credential; register again");
      return { kind: "component", component, machineId: machine.machineId };
    }
    const component = store.getComponent(id!);
    if (!component) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "unknown component credential; register again");
    return { kind: "component", component };
  };
  const admin = (call: { metadata: grpc.Metadata }) => {
    if (caller(call).kind !== "admin") throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call needs the lab's admin credential");
  };
  const component = (call: { metadata: grpc.Metadata }) => {
    const c = caller(call);
    if (c.kind !== "component") throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call is for registered components");
    return c;
  };
  const anyone = (call: { metadata: grpc.Metadata }) => caller(call);

  const machineView = (m: Machine): Machine => {
    const reports = ctx.reports.get(m.machineId) ?? {};
    const policy = m.policyName ? store.getPolicy(m.policyName) : undefined;
    const { health, issues } = machineHealth(m, reports, policy, Date.now(), ctx.options.heartbeatTimeoutSeconds * 1000);
    const points = store.listRecoveryPoints(m.machineId);
    return { ...m, health, issues, stats: mergeStats(reports, m.direction), lastRecoveryPoint: points[points.length - 1] };
  };

  const componentView = (c: Component): Component => {
    const age = c.lastHeartbeat ? Date.now() - c.lastHeartbeat.getTime() : Number.POSITIVE_INFINITY;
    if (age <= ctx.options.heartbeatTimeoutSeconds * 1000) return c;
    const seconds = Number.isFinite(age) ? `${Math.round(age / 1000)} s` : "ever";
    return {
      ...c,
      health: Health.HEALTH_CRITICAL,
      issues: [...c.issues, { health: Health.HEALTH_CRITICAL, code: "NO_HEARTBEAT", message: `no heartbeat for ${seconds}` }],
    };
  };

  return {
    register: unary(logger, (req) => {
      const given = createHash("sha256").update(req.passphrase).digest();
      const expected = createHash("sha256").update(ctx.options.passphrase).digest();
      if (!timingSafeEqual(given, expected)) {
        logger.warn("registration refused: wrong passphrase", { name: req.name, role: ComponentRole[req.role] });
        throw new SrlabError(
          ErrorCode.AUTHENTICATION_FAILED,
          "wrong deployment passphrase: use the passphrase of this configuration server (srlab up writes it to the lab's passphrase file)",
        );
      }
      if (!req.name) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "registration needs a component name");
      const roles = [
        ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
        ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
        ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
      ];
      if (!roles.includes(req.role)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "role must be process server, mobility agent or master target");
      const inAzure = req.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT && req.location === SiteLocation.SITE_LOCATION_AZURE;
      const registered = store.registerComponent({
        role: req.role,
        // A machine's agent in Azure is a component of its own next to the on-premises agent.
        name: inAzure ? `${req.name}-azure` : req.name,
        address: req.address,
        location: req.location,
        version: req.version,
        credentialHash: "",
      });
      bus.abandon(registered.componentId, `${req.name} restarted before it answered`);
      const response: RegisterResponse = {
        componentId: registered.componentId,
        credential: "",
        storage: undefined,
        segmentKey: Buffer.alloc(0),
        segmentKeyId: "",
        credentialKey: Buffer.alloc(0),
        machineId: "",
        timeUnitSeconds: ctx.options.timeUnitSeconds,
        azureDisks: [],
      };
      const storageSettings = {
        kind: ctx.options.storage.kind,
        connectionString: ctx.options.storage.connectionString ?? "",
        container: ctx.options.storage.container,
        directory: ctx.options.storage.directory ?? "",
      };
      if (inAzure) {
        // The machine failed over earlier; its agent in Azure runs on the failed-over disks.
        const machine = store.getMachine(req.name);
        if (!machine?.failover || machine.azureDisks.length === 0) {
          throw new SrlabError(ErrorCode.WRONG_STATE, `machine ${req.name} has not failed over to Azure; there is nothing to run in Azure`);
        }
        store.updateMachine(machine.machineId, { azureAgentComponentId: registered.componentId });
        response.machineId = machine.machineId;
        response.credential = issueCredential(ctx.credentialKey, `agent/${machine.machineId}/azure`);
        response.storage = storageSettings;
        response.azureDisks = machine.azureDisks;
        if (machine.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && isReplicating(machine.state)) {
          ctx.failbacks.resendAssignment(machine.machineId).catch((err) => logger.warn("re-assignment failed", { error: (err as Error).message }));
        }
      } else if (req.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
        const machine = store.upsertMachine({ name: req.name, agentComponentId: registered.componentId });
        store.setMachineDisks(machine.machineId, req.disks);
        response.machineId = machine.machineId;
        response.credential = issueCredential(ctx.credentialKey, `agent/${machine.machineId}`);
        // A restarted agent learns again where to replicate.
        if (
          machine.processServerId &&
          isReplicating(machine.state) &&
          machine.direction === ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE
        ) {
          jobs.sendAssignment("", machine.machineId).catch((err) => logger.warn("re-assignment failed", { error: (err as Error).message }));
        }
      } else {
        response.credential = issueCredential(ctx.credentialKey, `${ROLE_SUBJECT[req.role]}/${registered.componentId}`);
        response.storage = storageSettings;
        response.segmentKeyId = ctx.segmentKeyId;
        response.segmentKey = deriveSegmentKey(ctx.deploymentSecret, ctx.segmentKeyId);
        response.credentialKey = ctx.credentialKey;
        if (req.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
          for (const m of store.machinesOfProcessServer(registered.componentId)) {
            if (isReplicating(m.state) && m.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES) {
              ctx.failbacks.resendAssignment(m.machineId).catch((err) => logger.warn("re-assignment failed", { error: (err as Error).message }));
            } else if (isReplicating(m.state)) {
              jobs.sendAssignment("", m.machineId).catch((err) => logger.warn("re-assignment failed", { error: (err as Error).message }));
            }
          }
        }
      }
      logger.info("component registered", { name: req.name, role: ComponentRole[req.role], address: req.address });
      return response;
    }),

    heartbeat: unary(logger, (req, call) => {
      const c = component(call);
      const now = new Date();
      store.recordHeartbeat(c.component.componentId, req.health, req.issues, now);
      for (const report of req.machines) acceptReport(ctx, c.component, report, now.getTime());
      return { serverTime: now };
    }),

    watchCommands: serverStream(logger, async (_req, call) => {
      const c = component(call);
      await bus.attach(c.component.componentId, call as unknown as grpc.ServerWritableStream<unknown, WatchCommandsResponse>);
    }),

    reportCommandResult: unary(logger, (req, call) => {
      component(call);
      bus.complete(req.commandId, req.success, req.error, req.resultJson);
      return {};
    }),

    updateJob: unary(logger, (req, call) => {
      anyone(call);
      if (!store.getJob(req.jobId)) return {};
      if (req.stepName) {
        store.updateJobStep(req.jobId, req.stepName, { state: req.stepState || JobState.JOB_STATE_IN_PROGRESS, progressPercent: req.progressPercent, message: req.message });
      }
      // Components report cumulative bytes; the job keeps the total.
      const job = store.getJob(req.jobId)!;
      if (req.bytesSent > job.bytesSent) store.addJobBytes(req.jobId, req.bytesSent - job.bytesSent);
      return {};
    }),

    reportRecoveryPoint: unary(logger, (req, call) => {
      component(call);
      if (req.recoveryPoint) store.addRecoveryPoint(req.recoveryPoint);
      return {};
    }),

    listComponents: unary(logger, (_req, call) => {
      admin(call);
      return { components: store.listComponents().map(componentView) };
    }),

    listMachines: unary(logger, (_req, call) => {
      admin(call);
      return { machines: store.listMachines().map(machineView) };
    }),

    getMachine: unary(logger, (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}" (see srlab status)`);
      return { machine: machineView(m) };
    }),

    createPolicy: unary(logger, (req, call) => {
      admin(call);
      if (!req.policy) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "policy is required");
      return { policy: store.createPolicy(req.policy) };
    }),

    listPolicies: unary(logger, (_req, call) => {
      admin(call);
      return { policies: store.listPolicies() };
    }),

    enableProtection: unary(logger, (req, call) => {
      admin(call);
      return { job: jobs.enableProtection(req.machine, req.policyName || "default") };
    }),

    disableProtection: unary(logger, (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}"`);
      store.updateMachine(m.machineId, { state: ReplicationState.REPLICATION_STATE_UNPROTECTED });
      return {};
    }),

    startResync: unary(logger, (req, call) => {
      admin(call);
      return { job: jobs.startResync(req.machine) };
    }),

    createAppConsistentPoint: unary(logger, (req, call) => {
      admin(call);
      return { job: jobs.appConsistentPoint(req.machine, req.tagName) };
    }),

    startWorkload: unary(logger, (req, call) => {
      admin(call);
      if (!req.workload) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "workload is required");
      return { job: jobs.workload(req.machine, req.workload) };
    }),

    listRecoveryPoints: unary(logger, async (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}"`);
      // "1 of 2 disks": coverage is against the disks the machine has now (a point keeps removed ones).
      const disks = m.disks.length;
      const recoveryPoints = store.listRecoveryPoints(m.machineId).map((p) => ({ ...p, disksTotal: Math.max(p.disksCovered, disks) }));
      return { recoveryPoints, recoverableRange: await ctx.failovers.recoverableRange(m.machineId) };
    }),

    failover: unary(logger, (req, call) => {
      admin(call);
      return {
        job: ctx.failovers.failover(req.machine, {
          selector: req.point,
          test: req.test,
          shutdownSource: req.shutdownSource,
          network: req.network,
        }),
      };
    }),

    cleanupTestFailover: unary(logger, (req, call) => {
      admin(call);
      return { job: ctx.failovers.cleanupTestFailover(req.machine) };
    }),

    changeRecoveryPoint: unary(logger, (req, call) => {
      admin(call);
      return { job: ctx.failovers.changeRecoveryPoint(req.machine, req.point) };
    }),

    commitFailover: unary(logger, (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (m?.state === ReplicationState.REPLICATION_STATE_FAILED_BACK) return { job: ctx.failbacks.commitFailback(m) };
      return { job: ctx.failovers.commit(req.machine) };
    }),

    createNetwork: unary(logger, (req, call) => {
      admin(call);
      if (!req.network) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "network is required");
      validateNetwork(req.network);
      const conflict = circuitConflict(req.network, store.listNetworks());
      if (conflict) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, conflict);
      return { network: store.upsertNetwork(req.network) };
    }),

    listNetworks: unary(logger, (_req, call) => {
      admin(call);
      return { networks: store.listNetworks() };
    }),

    setNetworkMapping: unary(logger, (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}"`);
      const mapping = req.mapping;
      if (!mapping?.network) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a network mapping needs a target network");
      const network = store.getNetwork(mapping.network);
      if (!network) throw new SrlabError(ErrorCode.NOT_FOUND, `no network named ${mapping.network} (create it with srlab network create)`);
      if (mapping.subnet && !network.subnets.includes(mapping.subnet)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `network ${network.name} has no subnet ${mapping.subnet} (it has ${network.subnets.join(", ") || "none"})`);
      }
      const ip = mapping.keepSourceIp ? mapping.sourceIpAddress : mapping.ipAddress;
      if (ip && !network.addressSpaces.some((cidr) => ipInCidr(ip, cidr))) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `IP ${ip} is outside network ${network.name} (${network.addressSpaces.join(", ")})`);
      }
      if (ip && mapping.subnet && !ipInCidr(ip, mapping.subnet)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `IP ${ip} is outside subnet ${mapping.subnet}`);
      }
      return { machine: machineView(store.updateMachine(m.machineId, { networkMapping: mapping })) };
    }),
    reprotect: unary(logger, (req, call) => {
      admin(call);
      const m = store.getMachine(req.machine);
      if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}" (see srlab status)`);
      if (m.state === ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED) {
        return {
          job: ctx.failbacks.reprotectToOnPremises(m, {
            masterTarget: req.masterTarget,
            processServer: req.processServer,
            datastore: req.datastore,
            alternateLocation: req.alternateLocation,
          }),
        };
      }
      if (m.state === ReplicationState.REPLICATION_STATE_UNPROTECTED) return { job: jobs.enableProtection(m.machineId, "default") };
      throw new SrlabError(
        ErrorCode.WRONG_STATE,
        `machine ${m.name} is ${stateName(m.state)}; reprotect needs a committed failover (to protect back to on-premises) or a failed-back, committed machine (to protect to Azure again)`,
      );
    }),

    failback: unary(logger, (req, call) => {
      admin(call);
      return { job: ctx.failbacks.failback(req.machine) };
    }),

    listJobs: unary(logger, (req, call) => {
      admin(call);
      let machineId: string | undefined;
      if (req.machine) {
        const m = store.getMachine(req.machine);
        if (!m) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `no machine named "${req.machine}"`);
        machineId = m.machineId;
      }
      return { jobs: store.listJobs(machineId) };
    }),

    getJob: unary(logger, (req, call) => {
      admin(call);
      const job = store.getJob(req.jobId);
      if (!job) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${req.jobId}`);
      return { job };
    }),
  };

}

function isReplicating(state: ReplicationState): boolean {
  return (
    state === ReplicationState.REPLICATION_STATE_INITIAL_REPLICATION ||
    state === ReplicationState.REPLICATION_STATE_ENABLING_PROTECTION ||
    state === ReplicationState.REPLICATION_STATE_PROTECTED ||
    state === ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED ||
    state === ReplicationState.REPLICATION_STATE_RESYNCING
  );
}

/** Folds a component's per-machine report into the machine's state. */
function acceptReport(ctx: ServiceContext, from: Component, report: MachineReplicationReport, now: number): void {
  const machine = ctx.store.getMachine(report.machineId);
  if (!machine) return;
  const reports = ctx.reports.get(machine.machineId) ?? {};
  if (from.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT && from.componentId === machine.azureAgentComponentId) {
    reports.azureAgent = { report, at: now };
    if (report.disks.length > 0) ctx.store.updateMachine(machine.machineId, { azureDisks: report.disks });
  } else if (from.role === ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT) {
    if (machine.agentComponentId !== from.componentId) return;
    reports.agent = { report, at: now };
    if (report.disks.length > 0) ctx.store.setMachineDisks(machine.machineId, report.disks);
    if (report.resyncRequired && machine.state === ReplicationState.REPLICATION_STATE_PROTECTED) {
      ctx.store.updateMachine(machine.machineId, {
        state: ReplicationState.REPLICATION_STATE_RESYNC_REQUIRED,
        resyncRequired: true,
        resyncReason: report.resyncReason,
      });
      ctx.logger.warn("machine needs resync", { machine: machine.name, reason: report.resyncReason });
    }
  } else if (from.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER) {
    if (machine.processServerId !== from.componentId) return;
    reports.processServer = { report, at: now };
  }
  ctx.reports.set(machine.machineId, reports);
  ctx.store.updateMachine(machine.machineId, { stats: mergeStats(reports, machine.direction) });
  if (reports.processServer) ctx.store.markProcessed(machine.machineId, reports.processServer.report.stats?.processedSequence ?? 0);
}
