import { Histogram } from "./histogram.js";
import { rates, type RunSample } from "./samples.js";

export interface CapacityPlan {
  method: string;
  target: { machines: number; rpoSeconds: number; growthPercent: number };
  measured: {
    /** 95th percentile of one machine's churn over every machine-second of the load. */
    churnP95BytesPerSecond: number;
    /** Per process server: the upload rate it sustained (95th percentile of its per-second rate over load and drain). */
    processServerUploadBytesPerSecond: number;
    processServers: number;
    /** Whether a process server fell behind (backlog grew): then its figure is its capacity; otherwise a lower bound. */
    saturated: boolean;
  };
  plannedChurnPerMachineBytesPerSecond: number;
  processServers: number;
  cacheBytesPerProcessServer: number;
  uploadBandwidthBitsPerSecond: number;
  notes: string[];
}

/**
 * Sizing the way ASR's Deployment Planner does — the 95th percentile of measured churn per
 * machine, plus growth — but from a real run instead of profiling: how many process servers,
 * how much cache and what upload bandwidth M machines of this profile need to hold the RPO.
 */
export function capacityPlan(
  samples: readonly RunSample[],
  loadSeconds: number,
  machineToPs: ReadonlyMap<string, string>,
  target: { machines: number; rpoSeconds: number; growthPercent: number },
): CapacityPlan {
  const load = samples.filter((s) => s.t >= 0 && s.t <= loadSeconds + 0.5);
  const machines = [...new Set(load.flatMap((s) => Object.keys(s.machines)))];
  const churn = new Histogram();
  for (const m of machines) for (const r of rates(load, "capturedBytes", m)) if (r !== null) churn.record(r);
  const churnP95 = churn.percentile(95);

  // The drain is where a process server uploads as fast as it can: measure it over load and drain.
  const busy = samples.filter((s) => s.t >= 0);
  const psNames = [...new Set(machines.map((m) => machineToPs.get(m) ?? "?"))];
  let psRate = 0;
  for (const ps of psNames) {
    const members = machines.filter((m) => (machineToPs.get(m) ?? "?") === ps);
    const h = new Histogram();
    const perSecond = members.map((m) => rates(busy, "uploadedBytes", m));
    for (let i = 0; i < busy.length; i++) {
      const vals = perSecond.map((r) => r[i]).filter((x): x is number => x !== null && x !== undefined);
      if (vals.length) h.record(vals.reduce((a, b) => a + b, 0));
    }
    psRate = Math.max(psRate, h.percentile(95));
  }
  const backlogs = load.map((s) => Math.max(0, ...Object.values(s.processServers).map((p) => p.backlogSeconds)));
  const third = Math.max(1, Math.floor(backlogs.length / 3));
  const early = backlogs.slice(0, third);
  const late = backlogs.slice(-third);
  const avg = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : 0);
  const saturated = avg(late) > Math.max(2, 2 * avg(early));

  const planned = churnP95 * (1 + target.growthPercent / 100);
  const total = planned * target.machines;
  const processServers = psRate > 0 ? Math.max(1, Math.ceil(total / psRate)) : 0;
  const perPs = processServers > 0 ? total / processServers : total;
  // Writes may wait up to the RPO in the cache; keep that above ASR's 30 % free-space warning.
  const cacheBytes = (perPs * target.rpoSeconds) / 0.7;
  const notes = [
    "Sized like ASR's Deployment Planner: the 95th percentile of measured churn per machine, plus growth.",
    saturated
      ? "The process server fell behind during the run, so its measured upload rate is its capacity in this lab."
      : "The process server kept up during the run, so its measured upload rate is a lower bound of its capacity: the process-server count is conservative. Raise --rate until the backlog grows to measure the limit.",
    "Bandwidth is of write payload; segments are compressed before upload, so the wire carries less for compressible data.",
    "Cache holds one RPO of churn per process server and stays above the 30 % free-space warning.",
  ];
  return {
    method: "95th percentile of measured churn per machine plus growth (as ASR's Deployment Planner)",
    target,
    measured: { churnP95BytesPerSecond: churnP95, processServerUploadBytesPerSecond: psRate, processServers: psNames.length, saturated },
    plannedChurnPerMachineBytesPerSecond: planned,
    processServers,
    cacheBytesPerProcessServer: cacheBytes,
    uploadBandwidthBitsPerSecond: total * 8,
    notes,
  };
}
