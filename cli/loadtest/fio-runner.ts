import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { Histogram } from "./histogram.js";
import { LOAD_PROFILES } from "./profiles.js";
import type { Stage } from "./spec.js";

export interface FioTarget {
  machine: string;
  nbdUri: string;
  diskSizeBytes: number;
}

/** A job file for one machine: one fio job per stage, run one after the other (stonewall). */
export function profileJobFile(profileName: string, stages: readonly Stage[], target: FioTarget, seed: number): string {
  const p = LOAD_PROFILES[profileName]!;
  const lines = [
    "; written by srlab loadtest",
    "[global]",
    "ioengine=nbd",
    `uri=${target.nbdUri}`,
    `size=${target.diskSizeBytes}`,
    "time_based=1",
    `randseed=${seed}`,
    "group_reporting=0",
  ];
  const total = stages.reduce((n, s) => n + s.durationSeconds, 0);
  let i = 0;
  if (p.readBurstFraction) {
    // Boot storm: reads only, as fast as the export serves them, then the write stages.
    lines.push("", "[read-burst]", "rw=randread", "bs=64k", "iodepth=16", "norandommap=1", `runtime=${Math.max(1, Math.round(total * p.readBurstFraction))}s`, "stonewall");
  }
  for (const s of stages) {
    const write = Math.max(1, Math.round(s.rateBytesPerSecond));
    const read = Math.round(write * p.readsPerWrite);
    lines.push("", `[stage-${++i}]`, ...p.fio, `runtime=${Math.max(1, Math.round(s.durationSeconds))}s`, `rate=${read > 0 ? read : ""},${write}`, "stonewall");
  }
  return `${lines.join("\n")}\n`;
}

interface FioJson {
  jobs: Array<{
    jobname: string;
    error: number;
    write: { io_bytes: number; clat_ns: { N?: number; bins?: Record<string, number>; percentile?: Record<string, number>; mean: number } };
  }>;
}

export interface FioOutcome {
  machine: string;
  /** Write completion latency, milliseconds (from fio's histogram bins). */
  latency: Histogram;
  writtenBytes: number;
  jsonFile: string;
}

/**
 * Runs fio once for a machine and reads its json+ report, whose completion-latency bins give
 * the latency histogram (exact counts, not percentiles of percentiles).
 */
export async function runFio(jobFile: string, target: FioTarget, outFile: string, signal?: AbortSignal): Promise<FioOutcome> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("fio", ["--output-format=json+", `--output=${outFile}`, jobFile], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, SRLAB_NBD_URI: target.nbdUri, SRLAB_DISK_SIZE: String(target.diskSizeBytes), SRLAB_MACHINE: target.machine },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const onAbort = () => child.kill("SIGINT");
    signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err) => reject(new Error(`cannot run fio: ${err.message}`)));
    child.on("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (code === 0 || signal?.aborted) resolve();
      else reject(new Error(`fio for ${target.machine} failed (${code}): ${stderr.trim().split("\n").slice(-2).join(" ") || "no message"}`));
    });
  });
  const text = await readFile(outFile, "utf8");
  const report = JSON.parse(text.slice(text.indexOf("{"))) as FioJson;
  const latency = new Histogram();
  let writtenBytes = 0;
  for (const job of report.jobs) {
    if (job.error) throw new Error(`fio job ${job.jobname} for ${target.machine} failed with error ${job.error}`);
    writtenBytes += job.write.io_bytes;
    for (const [ns, count] of Object.entries(job.write.clat_ns.bins ?? {})) latency.record(Number(ns) / 1e6, count);
  }
  return { machine: target.machine, latency, writtenBytes, jsonFile: outFile };
}

export async function writeJobFile(path: string, text: string): Promise<string> {
  await writeFile(path, text);
  return path;
}
