import { availableParallelism, cpus, freemem, totalmem } from "node:os";

export interface ProcessUsageSample {
  /** This process's CPU time over the interval, as a percentage of all the host's cores. */
  cpuPercent: number;
  memoryBytes: number;
  /** Resident memory as a percentage of the host's memory. */
  memoryPercent: number;
  /** Host CPU busy over the interval (all processes), percentage of all cores. */
  hostCpuPercent: number;
  /** Host memory in use (total minus free), percentage. */
  hostMemoryPercent: number;
}

/**
 * CPU and memory of this process between two calls — what a daemon reports in each heartbeat.
 * Percentages are of the whole host, so a process server on a dedicated machine reads like
 * ASR's process-server CPU and memory figures.
 */
export class ProcessUsage {
  private lastCpu = process.cpuUsage();
  private lastWall = process.hrtime.bigint();
  private lastHost = hostTimes();

  sample(): ProcessUsageSample {
    const cpu = process.cpuUsage();
    const wall = process.hrtime.bigint();
    const host = hostTimes();
    const cores = Math.max(1, availableParallelism());
    const wallMicros = Number(wall - this.lastWall) / 1000;
    const usedMicros = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
    const hostTotal = host.total - this.lastHost.total;
    const hostIdle = host.idle - this.lastHost.idle;
    this.lastCpu = cpu;
    this.lastWall = wall;
    this.lastHost = host;
    const rss = process.memoryUsage.rss();
    const total = totalmem();
    return {
      cpuPercent: wallMicros > 0 ? clamp((100 * usedMicros) / (wallMicros * cores)) : 0,
      memoryBytes: rss,
      memoryPercent: clamp((100 * rss) / total),
      hostCpuPercent: hostTotal > 0 ? clamp((100 * (hostTotal - hostIdle)) / hostTotal) : 0,
      hostMemoryPercent: clamp((100 * (total - freemem())) / total),
    };
  }
}

function hostTimes(): { total: number; idle: number } {
  let total = 0;
  let idle = 0;
  for (const c of cpus()) {
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
    idle += c.times.idle;
  }
  return { total, idle };
}

const clamp = (p: number) => Math.min(100, Math.max(0, p));
