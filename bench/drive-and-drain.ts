// One measured run: start the workload on every machine, sample RPO, stop when all caught up.
import { performance } from "node:perf_hooks";
import { sleep } from "../common/async/index.js";
import { type BenchLab, isCaughtUp, TICK_MS, type WorkloadOutcome, type WorkloadRequest } from "./bench-lab.js";

export interface DrainResult {
  /** Bytes the workload generators wrote, all machines. */
  bytes: number;
  writes: number;
  /** Longest write phase of one machine (seconds, as the agent measured it). */
  writeSeconds: number;
  /** From starting the workloads to the first status sample with every machine caught up. */
  seconds: number;
  /** rpoSeconds of every machine at every sample, from the start until caught up. */
  rpoSamples: number[];
  /** Mean time between status samples (the aim is 250 ms; a loaded CS answers slower). */
  sampleIntervalMs: number;
  /** Some machine fell back to bitmap mode (writes coalesced: bytes overstate what was sent). */
  bitmapMode: boolean;
}

export async function driveAndDrain(lab: BenchLab, workload: WorkloadRequest, timeoutMs: number): Promise<DrainResult> {
  // Baseline: each machine's received sequence once idle; a workload write is one sequence number.
  const baseline = new Map((await lab.waitCaughtUp(120_000)).map((m) => [m.machineId, m.receivedSequence]));
  const t0 = performance.now();
  const jobIds = await lab.startWorkloads(workload);
  let outcomes = new Map<string, WorkloadOutcome>();
  const rpoSamples: number[] = [];
  let bitmapMode = false;
  let streak = 0;
  for (let tick = 1; ; tick++) {
    const tickStart = performance.now();
    const machines = await lab.status();
    const at = performance.now();
    for (const m of machines) {
      rpoSamples.push(m.rpoSeconds);
      if (m.captureMode !== "data") bitmapMode = true;
    }
    // Jobs cannot end before their duration; polling them earlier only loads the CS.
    if (outcomes.size < jobIds.length && at - t0 >= workload.durationSeconds * 1000) outcomes = await lab.workloadOutcomes(jobIds);
    if (outcomes.size === jobIds.length) {
      const target = (machineId: string) =>
        (baseline.get(machineId) ?? 0) + [...outcomes.values()].filter((o) => o.machineId === machineId).reduce((n, o) => n + o.writes, 0);
      // Bitmap mode renumbers writes, so fall back to seeing the drained state twice in a row.
      const drained = machines.every((m) => isCaughtUp(m, bitmapMode ? 0 : target(m.machineId)));
      streak = drained ? streak + 1 : 0;
      if (streak >= (bitmapMode ? 2 : 1)) {
        const all = [...outcomes.values()];
        return {
          bytes: all.reduce((n, o) => n + o.bytes, 0),
          writes: all.reduce((n, o) => n + o.writes, 0),
          writeSeconds: Math.max(...all.map((o) => o.seconds)),
          seconds: (at - t0) / 1000,
          rpoSamples,
          sampleIntervalMs: (at - t0) / tick,
          bitmapMode,
        };
      }
    }
    if (at - t0 > timeoutMs) throw new Error(`replication did not catch up within ${timeoutMs / 1000} s of starting the workload`);
    // Spaced from this sample's start: a slow answer delays the next sample rather than bunching them.
    await sleep(Math.max(0, tickStart + TICK_MS - performance.now()));
  }
}
