import { jobTypes, workloadProfiles } from "../../common/enum-names/index.js";
import { duration, rate, size, wholeNumber } from "../arguments.js";
import { type RecoverableRange, type RecoveryPoint, RecoveryPointType, ReplicationDirection } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { enumLabel, printJson, printTable } from "../output.js";
import { followJob, jobDocument, waitForJob } from "./jobs.js";

/** Prints a started job, or follows it to the end with --wait. */
export async function report(client: AdminClient, jobId: string, wait: boolean, json: boolean, what: string): Promise<void> {
  if (wait) {
    const job = await waitForJob(client, jobId, !json);
    if (json) printJson(jobDocument(job));
    else console.log(`${what}: done (job ${job.jobId})`);
    return;
  }
  const { job } = await client.call(client.client.getJob, { jobId });
  if (json) printJson(jobDocument(job!));
  else console.log(`${what}: started job ${jobId} (follow it with srlab jobs --job ${jobId})`);
}

export function protect(dir: string, machine: string, o: { policy?: string; wait?: boolean; json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.enableProtection, { machine, policyName: o.policy ?? "" });
    await report(c, job!.jobId, Boolean(o.wait), Boolean(o.json), `protect ${machine}`);
  });
}

export function resync(dir: string, machine: string, o: { wait?: boolean; json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.startResync, { machine });
    await report(c, job!.jobId, Boolean(o.wait), Boolean(o.json), `resync ${machine}`);
  });
}

export function tag(dir: string, machine: string, o: { name?: string; json?: boolean; wait?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.createAppConsistentPoint, { machine, tagName: o.name ?? "" });
    await report(c, job!.jobId, o.wait !== false, Boolean(o.json), `app-consistent point for ${machine}`);
  });
}

export function workload(
  dir: string,
  machine: string,
  o: { profile: string; rate?: string; iops?: string; duration?: string; seed?: string; blockSize?: string; disk?: string; wait?: boolean; json?: boolean },
) {
  // Checked before the lab is contacted: a bad value starts no job.
  const spec = {
    machineId: "",
    profile: workloadProfiles.parse(o.profile),
    rateBytesPerSecond: o.rate ? rate("--rate", o.rate) : 0,
    iops: o.iops !== undefined ? wholeNumber("--iops", o.iops, 1) : 0,
    durationSeconds: duration("--duration", o.duration ?? "30s", true) / 1000,
    seed: o.seed !== undefined ? wholeNumber("--seed", o.seed, 0, 0xffff_ffff) : 1,
    blockSize: o.blockSize ? size("--block-size", o.blockSize) : 0,
    diskIndex: o.disk !== undefined ? wholeNumber("--disk", o.disk, 0) : 0,
  };
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.call(c.client.startWorkload, { machine, workload: spec });
    await report(c, job!.jobId, o.wait !== false, Boolean(o.json), `workload on ${machine}`);
  });
}

export function pointDocument(p: RecoveryPoint) {
  return {
    id: p.recoveryPointId,
    time: p.time?.toISOString() ?? null,
    sequence: p.sequence,
    type: enumLabel(RecoveryPointType, p.type, "RECOVERY_POINT_TYPE_"),
    tagName: p.tagName || null,
    disks: `${p.disksCovered} of ${p.disksTotal} disks`,
    disksCovered: p.disksCovered,
    disksTotal: p.disksTotal,
    processed: p.processed,
    /** Some write up to the point was read from the disk later (metadata capture mode). */
    metadataMode: p.metadataMode,
    /** "azure-to-on-premises": a point of the way back, kept by the master target. */
    direction: p.direction ? enumLabel(ReplicationDirection, p.direction, "REPLICATION_DIRECTION_") : "on-premises-to-azure",
  };
}

export function rangeDocument(r: RecoverableRange | undefined) {
  if (!r) return null;
  return {
    available: r.available,
    firstSequence: r.available ? r.firstSequence : null,
    firstTime: r.firstTime?.toISOString() ?? null,
    lastSequence: r.available ? r.lastSequence : null,
    fromBase: r.fromBase,
    prunedAt: r.prunedAt?.toISOString() ?? null,
    prunedThroughSequence: r.prunedAt ? r.prunedThroughSequence : null,
    retentionSeconds: r.prunedAt ? r.retentionSeconds : null,
    description: r.description,
  };
}

export function points(dir: string, machine: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { recoveryPoints, recoverableRange } = await c.call(c.client.listRecoveryPoints, { machine });
    const docs = recoveryPoints.map(pointDocument);
    const range = rangeDocument(recoverableRange);
    if (o.json) return printJson({ recoverableRange: range, points: docs });
    printTable(
      ["ID", "TIME", "SEQUENCE", "TYPE", "TAG", "DISKS", "PROCESSED", "DIRECTION"],
      docs.map((p) => [
        p.id,
        p.time ?? "-",
        p.sequence,
        p.type + (p.metadataMode ? " (metadata mode)" : ""),
        p.tagName ?? "-",
        p.disks,
        p.processed ? "yes" : "no",
        p.direction === "azure-to-on-premises" ? "failback" : "to Azure",
      ]),
    );
    console.log(`\nRecoverable with --seq/--at: ${range ? range.description : "unknown (storage could not be read)"}`);
  });
}

export function jobs(dir: string, o: { machine?: string; job?: string; json?: boolean; follow?: string; cancel?: string }) {
  return AdminClient.using(dir, async (c) => {
    if (o.cancel) {
      const { job } = await c.call(c.client.cancelJob, { jobId: o.cancel, reason: "cancelled with srlab jobs --cancel" });
      if (o.json) return printJson(jobDocument(job!));
      console.log(`job ${job!.jobId} (${jobTypes.name(job!.type)}): ${jobDocument(job!).state}`);
      return;
    }
    if (o.follow) {
      const job = await followJob(c, o.follow);
      if (o.json) printJson(jobDocument(job));
      return;
    }
    const list = o.job
      ? [(await c.call(c.client.getJob, { jobId: o.job })).job!]
      : (await c.call(c.client.listJobs, { machine: o.machine ?? "" })).jobs;
    const docs = list.map(jobDocument);
    if (o.json) return printJson(o.job ? docs[0] : docs);
    printTable(
      ["JOB", "TYPE", "STATE", "PROGRESS", "DURATION", "REPORTS", "ERROR"],
      docs.map((j) => [j.jobId, j.type, j.state, `${j.progressPercent.toFixed(0)}%`, `${j.durationSeconds.toFixed(1)} s`, j.reports.join(" ") || "–", j.error ?? ""]),
    );
  });
}

export function policies(dir: string, o: { json?: boolean }) {
  return AdminClient.using(dir, async (c) => {
    const { policies: list } = await c.call(c.client.listPolicies, {});
    if (o.json) return printJson(list);
    printTable(
      ["POLICY", "RPO THRESHOLD", "RETENTION", "CRASH-CONSISTENT", "APP-CONSISTENT", "RESYNC WINDOW"],
      list.map((p) => [
        p.name + (p.failback ? " (fixed)" : ""),
        `${p.rpoThresholdSeconds} s`,
        `${p.recoveryPointRetentionSeconds} s`,
        `every ${p.crashConsistentFrequencySeconds} s`,
        p.appConsistentFrequencySeconds ? `every ${p.appConsistentFrequencySeconds} s` : "off",
        p.resyncSchedule,
      ]),
    );
  });
}

export interface PolicyCreateOptions {
  resyncWindow?: string;
  rpoThreshold?: string;
  retention?: string;
  crashConsistent?: string;
  appConsistent?: string;
  json?: boolean;
}

/** A replication policy; values not given are the default policy's. Durations are in seconds (or "15m", "1h"). */
export function policyCreate(dir: string, name: string, o: PolicyCreateOptions) {
  const seconds = (flag: string, v: string | undefined, allowZero = false) =>
    v === undefined ? undefined : Math.round(duration(flag, v, !allowZero) / 1000);
  const given = {
    rpoThresholdSeconds: seconds("--rpo-threshold", o.rpoThreshold),
    recoveryPointRetentionSeconds: seconds("--retention", o.retention),
    crashConsistentFrequencySeconds: seconds("--crash-consistent", o.crashConsistent),
    appConsistentFrequencySeconds: seconds("--app-consistent", o.appConsistent, true),
  };
  return AdminClient.using(dir, async (c) => {
    const { policies: list } = await c.call(c.client.listPolicies, {});
    const base = list.find((p) => p.name === "default");
    if (!base) throw new Error("the lab has no default policy to take unset values from");
    const { policy } = await c.call(c.client.createPolicy, {
      policy: {
        name,
        rpoThresholdSeconds: given.rpoThresholdSeconds ?? base.rpoThresholdSeconds,
        recoveryPointRetentionSeconds: given.recoveryPointRetentionSeconds ?? base.recoveryPointRetentionSeconds,
        crashConsistentFrequencySeconds: given.crashConsistentFrequencySeconds ?? base.crashConsistentFrequencySeconds,
        appConsistentFrequencySeconds: given.appConsistentFrequencySeconds ?? base.appConsistentFrequencySeconds,
        resyncSchedule: o.resyncWindow ?? base.resyncSchedule,
        failback: false,
      },
    });
    if (o.json) printJson(policy);
    else console.log(`policy ${name} created (resync window: ${policy!.resyncSchedule}); use it with srlab protect MACHINE --policy ${name}`);
  });
}
