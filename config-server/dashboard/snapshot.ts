import type { Component, Job, Machine, RecoveryPoint, ReplicationPolicy, TelemetrySample } from "../../proto/index.js";
import type { TelemetrySampler } from "../telemetry/index.js";

/** What the dashboard reads, all in the configuration server's process (no second sampler). */
export interface DashboardSource {
  /** The configuration server itself (it sends no heartbeat, so it is not among the components). */
  configServer(): { name: string; address: string; version: string; storage: { endpoint: string; detail: string } };
  /** As `srlab status` sees them: health includes a missed heartbeat. */
  components(): Component[];
  /** As `srlab status` sees them: stats and health from the latest reports. */
  machines(): Machine[];
  jobs(machineId?: string): Job[];
  points(machineId: string): RecoveryPoint[];
  policies(): ReplicationPolicy[];
  /** Whether the machine page offers actions (dashboard.actions). */
  actionsEnabled?: boolean;
  /** A report file kept with a job (undefined when there is none). */
  jobReport(jobId: string, name: string): Buffer | undefined;
  /** The deployment's one time series (TelemetryService reads the same sampler). */
  sampler: TelemetrySampler;
}

/**
 * One moment's view of the deployment, shared by every page rendered for it: each list is read
 * at most once per sample however many browsers watch.
 */
export class Snapshot {
  readonly nowMs: number;
  private cache = new Map<string, unknown>();

  constructor(
    readonly source: DashboardSource,
    nowMs = Date.now(),
  ) {
    this.nowMs = nowMs;
  }

  private once<T>(key: string, read: () => T): T {
    if (!this.cache.has(key)) this.cache.set(key, read());
    return this.cache.get(key) as T;
  }

  components(): Component[] {
    return this.once("components", () => this.source.components());
  }
  machines(): Machine[] {
    return this.once("machines", () => this.source.machines());
  }
  jobs(): Job[] {
    return this.once("jobs", () => this.source.jobs());
  }
  points(machineId: string): RecoveryPoint[] {
    return this.once(`points/${machineId}`, () => this.source.points(machineId));
  }
  policies(): ReplicationPolicy[] {
    return this.once("policies", () => this.source.policies());
  }
  /** Samples of the last `seconds` (the whole window when absent), oldest first. */
  samples(seconds?: number): TelemetrySample[] {
    const all = this.once("samples", () => this.source.sampler.samples());
    if (seconds === undefined) return all;
    const from = this.nowMs - seconds * 1000;
    return all.filter((s) => (s.time?.getTime() ?? 0) > from);
  }
  componentName(id: string): string {
    return this.components().find((c) => c.componentId === id)?.name ?? "";
  }
  machineByName(name: string): Machine | undefined {
    return this.machines().find((m) => m.name === name || m.machineId === name);
  }
}

/** Bytes per second between two samples of a counter; null across a gap or a counter reset. */
export function rate(prev: number | undefined, next: number | undefined, seconds: number): number | null {
  if (prev === undefined || next === undefined || seconds <= 0 || next < prev) return null;
  return (next - prev) / seconds;
}
