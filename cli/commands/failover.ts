import { namedRecoveryPoints } from "../../common/enum-names/index.js";
import { type RecoveryPointSelector, ReplicationState } from "../../proto/index.js";
import { removeAzureMachine, startAzureMachine } from "../lab/index.js";
import { AdminClient } from "../admin-client.js";
import { printJson, printTable } from "../output.js";
import { jobDocument, waitForJob } from "./jobs.js";

/** --point latest|latest-processed|latest-app-consistent|ID, or --seq N, or --at TIME. */
export function recoveryPointSelector(o: { point?: string; seq?: string; at?: string }): RecoveryPointSelector {
  if (o.seq !== undefined) {
    const n = Number(o.seq);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--seq must be a positive write sequence number, got ${o.seq}`);
    return { selector: { $case: "sequence", value: n } };
  }
  if (o.at !== undefined) {
    const t = new Date(o.at);
    if (Number.isNaN(t.getTime())) throw new Error(`--at must be a time such as 2026-11-23T14:05:00Z, got ${o.at}`);
    return { selector: { $case: "time", value: t } };
  }
  const point = o.point ?? "latest";
  return namedRecoveryPoints.has(point) ? { selector: { $case: "named", value: namedRecoveryPoints.parse(point) } } : { selector: { $case: "recoveryPointId", value: point } };
}

async function follow(c: AdminClient, jobId: string, o: { json?: boolean; wait?: boolean }, what: string): Promise<void> {
  if (o.wait === false) {
    const { job } = await c.call(c.client.getJob, { jobId });
    if (o.json) printJson(jobDocument(job!));
    else console.log(`${what}: started job ${jobId}`);
    return;
  }
  const job = await waitForJob(c, jobId, !o.json);
  const doc = jobDocument(job);
  if (o.json) return printJson(doc);
  const r = doc.result as Record<string, unknown> | null;
  console.log(`${what}: done (job ${job.jobId})`);
  if (r && "sequence" in r) {
    console.log(`  recovered to sequence ${r.sequence}${r.recoveryPointId ? ` (point ${r.recoveryPointId})` : ""}`);
    console.log(`  achieved RPO ${Number(r.achievedRpoSeconds).toFixed(1)} s, RTO ${Number(r.rtoSeconds).toFixed(1)} s`);
    if (r.description) console.log(`  ${r.description}`);
  }
}

export function failover(
  dir: string,
  machine: string,
  o: { point?: string; seq?: string; at?: string; test?: boolean; shutdownSource?: boolean; network?: string; json?: boolean; wait?: boolean },
) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.failover, {
      machine,
      point: recoveryPointSelector(o),
      test: Boolean(o.test),
      shutdownSource: Boolean(o.shutdownSource),
      network: o.network ?? "",
    });
    await follow(c, job!.jobId, o, `${o.test ? "test failover" : "failover"} of ${machine}`);
  });
}

export function failoverCleanup(dir: string, machine: string, o: { json?: boolean; wait?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.cleanupTestFailover, { machine });
    await follow(c, job!.jobId, o, `test failover cleanup of ${machine}`);
  });
}

export function changePoint(dir: string, machine: string, o: { point?: string; seq?: string; at?: string; json?: boolean; wait?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.changeRecoveryPoint, { machine, point: recoveryPointSelector(o) });
    await follow(c, job!.jobId, o, `change of recovery point for ${machine}`);
  });
}

/**
 * Commits a failover (the machine then runs in Azure: the lab starts its Azure agent) or a
 * failback (the Azure machine is removed: the lab stops that agent).
 */
export function commit(dir: string, machine: string, o: { json?: boolean; wait?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.commitFailover, { machine });
    const done = await waitForJob(c, job!.jobId, !o.json);
    if (o.json) printJson(jobDocument(done));
    else console.log(`commit of ${machine}: done (job ${done.jobId})`);
    const { machine: m } = await c.call(c.client.getMachine, { machine });
    const name = m?.name ?? machine;
    if (m?.state === ReplicationState.REPLICATION_STATE_FAILOVER_COMMITTED) {
      const agent = await startAzureMachine(dir, name);
      if (!o.json) console.log(`${name} runs in Azure now (agent ${agent.name}, pid ${agent.pid})`);
    } else {
      await removeAzureMachine(dir, name);
      if (!o.json) console.log(`${name} no longer runs in Azure`);
    }
  });
}

export function reprotect(
  dir: string,
  machine: string,
  o: { masterTarget?: string; processServer?: string; datastore?: string; alternateLocation?: boolean; json?: boolean; wait?: boolean },
) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.reprotect, {
      machine,
      masterTarget: o.masterTarget ?? "",
      processServer: o.processServer ?? "",
      datastore: o.datastore ?? "",
      alternateLocation: Boolean(o.alternateLocation),
    });
    await follow(c, job!.jobId, o, `reprotect of ${machine}`);
  });
}

export function failback(dir: string, machine: string, o: { point?: string; json?: boolean; wait?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.failback, { machine, point: recoveryPointSelector({ point: o.point }) });
    await follow(c, job!.jobId, o, `failback of ${machine}`);
  });
}

export function networkCreate(
  dir: string,
  name: string,
  o: { addressSpace: string[]; subnet?: string[]; circuit?: string; onPremises?: boolean; json?: boolean },
) {
  return AdminClient.using(dir, async (c) => {
    const { network } = await c.call(c.client.createNetwork, {
      network: { name, addressSpaces: o.addressSpace, subnets: o.subnet ?? [], circuit: o.circuit ?? "", location: o.onPremises ? 1 : 2 },
    });
    if (o.json) printJson(network);
    else console.log(`network ${name} saved`);
  });
}

export function networkList(dir: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { networks } = await c.call(c.client.listNetworks, {});
    if (o.json) return printJson(networks);
    printTable(
      ["NETWORK", "ADDRESS SPACE", "SUBNETS", "CIRCUIT", "SITE"],
      networks.map((n) => [n.name, n.addressSpaces.join(","), n.subnets.join(",") || "-", n.circuit || "-", n.location === 1 ? "on-premises" : "azure"]),
    );
  });
}

export function networkMap(
  dir: string,
  machine: string,
  o: { network: string; subnet?: string; ip?: string; keepSourceIp?: string; json?: boolean },
) {
  return AdminClient.using(dir, async (c) => {
    await c.call(c.client.setNetworkMapping, {
      machine,
      mapping: {
        network: o.network,
        subnet: o.subnet ?? "",
        ipAddress: o.ip ?? "",
        keepSourceIp: o.keepSourceIp !== undefined,
        sourceIpAddress: o.keepSourceIp ?? "",
      },
    });
    if (!o.json) console.log(`${machine} fails over into ${o.network}${o.subnet ? `/${o.subnet}` : ""}`);
  });
}
