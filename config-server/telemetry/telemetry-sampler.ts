import { EventEmitter } from "node:events";
import {
  type AlertThresholds,
  type Component,
  ComponentRole,
  type ComponentSample,
  Health,
  type ComponentStats,
  type GetTelemetrySettingsResponse,
  type Machine,
  type MachineSample,
  type ProcessServerStats,
  type TelemetryAlert,
  type TelemetrySample,
} from "../../proto/index.js";
import { ProcessUsage } from "../../common/metrics/index.js";
import { asrThresholds, processServerAlerts } from "./alert-rules.js";
import { SampleWindow } from "./sample-window.js";

/** Where the sampler reads the deployment: the configuration store's view of it. */
export interface TelemetrySource {
  machines(): Machine[];
  components(): Component[];
}

export interface TelemetrySamplerOptions {
  source: TelemetrySource;
  timeUnitSeconds: number;
  intervalMs?: number;
  windowSeconds?: number;
  now?: () => number;
  /** The configuration server's own name: it samples its own CPU and memory (it sends no heartbeat). */
  selfName?: string;
}

/**
 * The deployment's one time series: every interval (a second) it records what the latest
 * heartbeats say about each machine and each daemon, keeps a window of samples (an hour) in
 * memory, and marks ASR's process-server alerts while their condition holds. It adds no traffic:
 * components report in their heartbeats anyway; this only remembers the figures over time.
 */
export class TelemetrySampler extends EventEmitter<{ sample: [TelemetrySample] }> {
  readonly intervalMs: number;
  readonly windowSeconds: number;
  readonly thresholds: AlertThresholds;
  private readonly window: SampleWindow<TelemetrySample>;
  private readonly latest = new Map<string, { stats?: ComponentStats; processServer?: ProcessServerStats }>();
  private readonly raised = new Map<string, { level: number; raisedAt: Date }>();
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly selfUsage = new ProcessUsage();

  constructor(private readonly o: TelemetrySamplerOptions) {
    super();
    this.intervalMs = o.intervalMs ?? 1_000;
    this.windowSeconds = o.windowSeconds ?? 3_600;
    this.now = o.now ?? Date.now;
    this.thresholds = asrThresholds(o.timeUnitSeconds);
    this.window = new SampleWindow(Math.max(1, Math.ceil((this.windowSeconds * 1000) / this.intervalMs)));
  }

  /** A component's own figures from its latest heartbeat. */
  noteHeartbeat(componentId: string, stats: ComponentStats | undefined, processServer: ProcessServerStats | undefined): void {
    this.latest.set(componentId, { stats, processServer });
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sampleNow(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now, keeps it and hands it to watchers. */
  sampleNow(): TelemetrySample {
    const nowMs = this.now();
    const time = new Date(nowMs);
    const components = this.o.source.components();
    const machines: MachineSample[] = this.o.source.machines().map((m) => ({
      machineId: m.machineId,
      name: m.name,
      processServerId: m.processServerId,
      state: m.state,
      health: m.health,
      rpoSeconds: m.stats?.rpoSeconds ?? 0,
      pendingBytes: m.stats?.pendingBytes ?? 0,
      captureMode: m.stats?.captureMode ?? 0,
      capturedBytes: m.stats?.capturedBytes ?? 0,
      receivedBytes: m.stats?.receivedBytes ?? 0,
      uploadedBytes: m.stats?.uploadedBytes ?? 0,
      processedBytes: m.stats?.processedBytes ?? 0,
      capturedSequence: m.stats?.capturedSequence ?? 0,
      receivedSequence: m.stats?.receivedSequence ?? 0,
      uploadedSequence: m.stats?.uploadedSequence ?? 0,
      processedSequence: m.stats?.processedSequence ?? 0,
    }));
    const componentSamples: ComponentSample[] = [];
    if (this.o.selfName) {
      const u = this.selfUsage.sample();
      componentSamples.push({
        componentId: "",
        name: this.o.selfName,
        role: ComponentRole.COMPONENT_ROLE_CONFIGURATION_SERVER,
        health: Health.HEALTH_NORMAL,
        heartbeatAgeSeconds: 0,
        stats: { cpuPercent: u.cpuPercent, memoryBytes: u.memoryBytes, memoryPercent: u.memoryPercent, hostCpuPercent: u.hostCpuPercent },
        processServer: undefined,
      });
    }
    const alerts: TelemetryAlert[] = [];
    const stillRaised = new Set<string>();
    for (const c of components) {
      const latest = this.latest.get(c.componentId);
      const isPs = c.role === ComponentRole.COMPONENT_ROLE_PROCESS_SERVER;
      componentSamples.push({
        componentId: c.componentId,
        name: c.name,
        role: c.role,
        health: c.health,
        heartbeatAgeSeconds: c.lastHeartbeat ? Math.max(0, (nowMs - c.lastHeartbeat.getTime()) / 1000) : -1,
        stats: latest?.stats,
        processServer: isPs ? latest?.processServer : undefined,
      });
      if (!isPs) continue;
      for (const a of processServerAlerts(latest?.stats, latest?.processServer, this.thresholds)) {
        const key = `${c.componentId}/${a.code}`;
        stillRaised.add(key);
        let raised = this.raised.get(key);
        if (!raised || raised.level !== a.level) {
          raised = { level: a.level, raisedAt: time };
          this.raised.set(key, raised);
        }
        alerts.push({ componentId: c.componentId, componentName: c.name, code: a.code, level: a.level, value: a.value, threshold: a.threshold, message: a.message, raisedAt: raised.raisedAt });
      }
    }
    for (const key of this.raised.keys()) if (!stillRaised.has(key)) this.raised.delete(key);
    const sample: TelemetrySample = { time, machines, components: componentSamples, alerts };
    this.window.push(sample);
    this.emit("sample", sample);
    return sample;
  }

  /** Samples taken after `since` (the whole window when absent), oldest first. */
  samples(since?: Date): TelemetrySample[] {
    if (!since) return this.window.toArray();
    const t = since.getTime();
    return this.window.newerThan((s) => (s.time?.getTime() ?? 0) > t);
  }

  settings(): GetTelemetrySettingsResponse {
    return {
      intervalSeconds: this.intervalMs / 1000,
      windowSeconds: this.windowSeconds,
      timeUnitSeconds: this.o.timeUnitSeconds,
      thresholds: this.thresholds,
    };
  }
}
