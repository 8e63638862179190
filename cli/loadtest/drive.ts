import { workloadProfiles } from "../../common/enum-names/index.js";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JobState, type Machine, ReplicationState } from "../../proto/index.js";
import type { AdminClient } from "../admin-client.js";
import { waitForJob } from "../commands/jobs.js";
import { type FioOutcome, profileJobFile, runFio } from "./fio-runner.js";
import { LOAD_PROFILES } from "./profiles.js";
import type { LoadReport } from "./report.js";
import type { LoadSpec, Stage } from "./spec.js";

export interface Assignment {
  machine: Machine;
  profile: string;
  stages: Stage[];
}

/** Protects the machines that are not yet, and waits until all are protected. */
export async function ensureProtected(client: AdminClient, names: string[], say: (l: string) => void): Promise<Machine[]> {
  const out: Machine[] = [];
  for (const name of names) {
    let { machine } = await client.call(client.client.getMachine, { machine: name });
    const until = Date.now() + 120_000;
    while (!machine && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      machine = (await client.call(client.client.getMachine, { machine: name }).catch(() => ({ machine: undefined }))).machine;
    }
    if (!machine) throw new Error(`machine ${name} did not register with the configuration server`);
    if (machine.state === ReplicationState.REPLICATION_STATE_UNPROTECTED) {
      say(`protecting ${name}`);
      const { job } = await client.call(client.client.enableProtection, { machine: name, policyName: "" });
      await waitForJob(client, job!.jobId, true);
    }
    for (;;) {
      ({ machine } = await client.call(client.client.getMachine, { machine: name }));
      if (machine!.state === ReplicationState.REPLICATION_STATE_PROTECTED) break;
      if (Date.now() > until + 600_000) throw new Error(`machine ${name} is not protected (state ${ReplicationState[machine!.state]})`);
      await new Promise((r) => setTimeout(r, 500));
    }
    out.push(machine!);
  }
  return out;
}

/** Which machine runs which profile and stages: groups take the machines in order (or by name). */
export function assign(spec: LoadSpec, machines: Machine[]): Assignment[] {
  const left = [...machines];
  const out: Assignment[] = [];
  for (const g of spec.groups) {
    const chosen = g.names
      ? g.names.map((n) => {
          const i = left.findIndex((m) => m.name === n);
          if (i < 0) throw new Error(`group names machine ${n}, which is not in the test (or named twice)`);
          return left.splice(i, 1)[0]!;
        })
      : left.splice(0, g.count ?? left.length);
    for (const m of chosen) out.push({ machine: m, profile: spec.fioJobFile ? "fio" : g.profile, stages: g.stages });
  }
  return out;
}

export function groupDocs(assignments: Assignment[]): LoadReport["spec"]["groups"] {
  const byKey = new Map<string, LoadReport["spec"]["groups"][number]>();
  for (const a of assignments) {
    const key = `${a.profile}|${JSON.stringify(a.stages)}`;
    const g = byKey.get(key) ?? { machines: [], profile: a.profile, stages: a.stages };
    g.machines.push(a.machine.name);
    byKey.set(key, g);
  }
  return [...byKey.values()];
}

/**
 * Drives every disk of every machine through its stages (a machine's rate is shared evenly by
 * its disks); returns fio's outcomes when fio ran. An abort stops fio and the generators.
 */
export async function drive(client: AdminClient, spec: LoadSpec, assignments: Assignment[], reportDir: string, signal: AbortSignal, onStage: (label: string) => void): Promise<FioOutcome[]> {
  if (spec.via === "nbd") {
    const dir = join(reportDir, "fio");
    mkdirSync(dir, { recursive: true });
    onStage("load (fio)");
    const runs = assignments.flatMap((a) =>
      a.machine.disks.map(async (disk) => {
        const share = a.machine.disks.length;
        const stages = a.stages.map((s) => ({ ...s, rateBytesPerSecond: Math.max(1, Math.round(s.rateBytesPerSecond / share)) }));
        const target = { machine: a.machine.name, nbdUri: disk.nbdUri, diskSizeBytes: disk.sizeBytes };
        const name = share > 1 ? `${a.machine.name}-disk${disk.index}` : a.machine.name;
        let jobFile = spec.fioJobFile;
        if (!jobFile) {
          jobFile = join(dir, `${name}.fio`);
          writeFileSync(jobFile, profileJobFile(a.profile, stages, target, spec.seed + disk.index));
        }
        return runFio(jobFile, target, join(dir, `${name}.json`), signal);
      }),
    );
    return Promise.all(runs);
  }
  const stages = Math.max(...assignments.map((a) => a.stages.length));
  const running = new Set<string>();
  const cancel = () => {
    for (const jobId of running) void client.call(client.client.cancelJob, { jobId, reason: "the load test was stopped" }).catch(() => undefined);
  };
  signal.addEventListener("abort", cancel, { once: true });
  try {
    await Promise.all(
      assignments.map(async (a) => {
        const p = LOAD_PROFILES[a.profile]!;
        const share = a.machine.disks.length;
        for (const [i, s] of a.stages.entries()) {
          if (signal.aborted) return;
          if (a === assignments[0]) onStage(stages > 1 ? `load stage ${i + 1}/${stages}` : "load");
          const jobs = await Promise.all(
            a.machine.disks.map(async (d) => {
              const { job } = await client.call(client.client.startWorkload, {
                machine: a.machine.name,
                workload: {
                  machineId: "",
                  profile: workloadProfiles.parse(p.generator.profile),
                  rateBytesPerSecond: Math.max(1, Math.round(s.rateBytesPerSecond / share)),
                  iops: 0,
                  durationSeconds: s.durationSeconds,
                  seed: spec.seed + i + 1000 * d.index,
                  blockSize: p.generator.blockSize,
                  diskIndex: d.index,
                },
              });
              running.add(job!.jobId);
              return job!.jobId;
            }),
          );
          if (signal.aborted) cancel();
          await Promise.all(jobs.map((id) => waitQuietly(client, id, signal).finally(() => running.delete(id))));
        }
      }),
    );
  } finally {
    signal.removeEventListener("abort", cancel);
  }
  return [];
}

/** Waits for a workload job; a cancelled one is fine once the run itself was stopped. */
export async function waitQuietly(client: AdminClient, jobId: string, signal: AbortSignal): Promise<void> {
  for (;;) {
    const { job } = await client.call(client.client.getJob, { jobId });
    if (job && job.state === JobState.JOB_STATE_SUCCEEDED) return;
    if (job && job.state === JobState.JOB_STATE_CANCELLED && signal.aborted) return;
    if (job && (job.state === JobState.JOB_STATE_FAILED || job.state === JobState.JOB_STATE_CANCELLED)) throw new Error(`workload job ${jobId} failed: ${job.error}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
