/**
 * Load profiles: what each machine's disk sees. `--rate` is always the write rate (churn) per
 * machine — what replication has to carry; reads only load the source disk. The built-in
 * generator writes only, so through it a mixed profile keeps its write pattern and drops its
 * reads; `--via nbd` runs the whole mix with fio.
 */
export interface LoadProfile {
  name: string;
  description: string;
  /** The agent's generator: its profile and block size. */
  generator: { profile: "sequential" | "random" | "zipf" | "append-log"; blockSize: number };
  /** fio job options for one stage (without rate, runtime and the NBD target). */
  fio: string[];
  /** Reads per written byte (fio's read rate is the write rate times this). */
  readsPerWrite: number;
  /** Read-only warm-up before the writes, as a fraction of the run (boot storm). */
  readBurstFraction?: number;
}

const KiB = 1024;

export const LOAD_PROFILES: Record<string, LoadProfile> = {
  oltp: {
    name: "oltp",
    description: "8 KiB random, 70/30 read/write",
    generator: { profile: "random", blockSize: 8 * KiB },
    fio: ["rw=randrw", "rwmixread=70", "bs=8k", "iodepth=16", "norandommap=1"],
    readsPerWrite: 70 / 30,
  },
  zipf: {
    name: "zipf",
    description: "4 KiB random writes on a hot spot (zipf 1.2)",
    generator: { profile: "zipf", blockSize: 4 * KiB },
    fio: ["rw=randwrite", "bs=4k", "iodepth=16", "random_distribution=zipf:1.2", "norandommap=1"],
    readsPerWrite: 0,
  },
  log: {
    name: "log",
    description: "sequential 16 KiB appends with a flush every 8 writes",
    generator: { profile: "append-log", blockSize: 16 * KiB },
    fio: ["rw=write", "bs=16k", "iodepth=1", "fsync=8"],
    readsPerWrite: 0,
  },
  backup: {
    name: "backup",
    description: "1 MiB sequential writes",
    generator: { profile: "sequential", blockSize: 1024 * KiB },
    fio: ["rw=write", "bs=1m", "iodepth=4"],
    readsPerWrite: 0,
  },
  "boot-storm": {
    name: "boot-storm",
    description: "a burst of 64 KiB random reads, then 4 KiB random writes",
    generator: { profile: "random", blockSize: 4 * KiB },
    fio: ["rw=randwrite", "bs=4k", "iodepth=16", "norandommap=1"],
    readsPerWrite: 0,
    readBurstFraction: 0.25,
  },
  jesd219: {
    name: "jesd219",
    description: "fio's JESD219 client workload example: 40/60 read/write, 512 B–64 KiB mix, zoned hot spots",
    generator: { profile: "random", blockSize: 4 * KiB },
    fio: [
      "rw=randrw",
      "rwmixread=40",
      "bssplit=512/4:1024/1:1536/1:2048/1:2560/1:3072/1:3584/1:4k/67:8k/10:16k/7:32k/3:64k/3",
      "random_distribution=zoned:50/5:30/15:20/80",
      "iodepth=16",
      "norandommap=1",
    ],
    readsPerWrite: 40 / 60,
  },
};

export const PROFILE_NAMES = Object.keys(LOAD_PROFILES);
