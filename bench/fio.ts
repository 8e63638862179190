// Runs one fio job against an NBD URI and reads the figures from its JSON report.
import { execFile, spawnSync } from "node:child_process";

export interface FioJob {
  name: string;
  rw: "randwrite" | "write" | "randrw";
  blockSize: string;
  iodepth: number;
  size: string;
  /** randrw: share of reads in percent. */
  readMix?: number;
  /** Cap on the write rate, bytes per second (fio --rate=,N). */
  writeRate?: number;
  /** Cap on the read rate, bytes per second (fio --rate=N,). Without it a mix with a write cap reads
   *  as fast as it can, and the mix is no longer the one asked for. */
  readRate?: number;
  /** Run for this long instead of until `size` is written once. */
  runtimeSeconds?: number;
  seed?: number;
}

export interface FioResult {
  iops: number;
  bytesPerSecond: number;
  /** Mean completion latency, microseconds. */
  clatMeanUs: number;
  /** Writes completed. */
  writes: number;
  /** Bytes written. */
  bytes: number;
  readIops: number;
  /** Reads completed. */
  reads: number;
}

export function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** fio can only reach NBD exports when it was built with libnbd. */
export function fioHasNbd(): boolean {
  return spawnSync("fio", ["--enghelp=nbd"], { stdio: "ignore" }).status === 0;
}

export function runFio(uri: string, job: FioJob): Promise<FioResult> {
  const args = [
    `--name=${job.name}`,
    "--ioengine=nbd",
    `--uri=${uri}`,
    `--rw=${job.rw}`,
    `--bs=${job.blockSize}`,
    `--iodepth=${job.iodepth}`,
    `--size=${job.size}`,
    `--randseed=${job.seed ?? 42}`,
    "--output-format=json",
  ];
  if (job.readMix !== undefined) args.push(`--rwmixread=${job.readMix}`);
  if (job.writeRate !== undefined || job.readRate !== undefined) {
    const cap = (n: number | undefined) => (n === undefined ? "" : String(Math.round(n)));
    args.push(`--rate=${cap(job.readRate)},${cap(job.writeRate)}`);
  }
  if (job.runtimeSeconds !== undefined) args.push("--time_based", `--runtime=${job.runtimeSeconds}`);
  return new Promise((resolve, reject) => {
    execFile("fio", args, { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fio ${job.name} failed: ${stderr.trim() || err.message}`));
      try {
        const report = JSON.parse(stdout.slice(stdout.indexOf("{"))) as {
          jobs: Array<{
            write: { iops: number; bw_bytes: number; io_bytes: number; total_ios: number; clat_ns: { mean: number } };
            read: { iops: number; total_ios: number };
          }>;
        };
        const w = report.jobs[0]!.write;
        resolve({
          iops: w.iops,
          bytesPerSecond: w.bw_bytes,
          clatMeanUs: w.clat_ns.mean / 1000,
          writes: w.total_ios,
          bytes: w.io_bytes,
          readIops: report.jobs[0]!.read.iops,
          reads: report.jobs[0]!.read.total_ios,
        });
      } catch (parseErr) {
        reject(new Error(`fio ${job.name}: unreadable JSON report (${(parseErr as Error).message})`));
      }
    });
  });
}
