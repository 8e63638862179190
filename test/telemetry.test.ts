import { joinToken } from "./support/join-token.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { channelCredentials, unaryCall } from "../common/grpc/index.js";
import { silentLogger } from "../common/logger.js";
import { ProcessUsage } from "../common/metrics/index.js";
import { ConfigServer } from "../config-server/index.js";
import { asrThresholds, processServerAlerts, SampleWindow, TelemetrySampler } from "../config-server/telemetry/index.js";
import {
  AlertCode,
  type Component,
  ComponentRole,
  ConfigurationServiceClient,
  Health,
  type Machine,
  ReplicationState,
  SiteLocation,
  TelemetryServiceClient,
} from "../proto/index.js";
import { testConfigServerOptions } from "./support/config-server-options.js";

describe("sample window", () => {
  test("keeps the newest items in order once full, and finds those newer than a time", () => {
    const w = new SampleWindow<number>(3);
    for (let i = 1; i <= 5; i++) w.push(i);
    expect(w.toArray()).toEqual([3, 4, 5]);
    expect(w.size).toBe(3);
    expect(w.latest()).toBe(5);
    expect(w.newerThan((n) => n > 3)).toEqual([4, 5]);
    expect(w.newerThan((n) => n > 9)).toEqual([]);
    expect(() => new SampleWindow(0)).toThrow(/positive/);
  });
});

describe("ASR process-server alerts", () => {
  const t = asrThresholds(1);
  const stats = (cpu: number, mem: number) => ({ cpuPercent: cpu, memoryBytes: 0, memoryPercent: mem, hostCpuPercent: cpu });
  const ps = (free: number, backlog: number) => ({ cacheUsedBytes: 0, cacheCapacityBytes: 100, cacheFreePercent: free, uploadBacklogBytes: 0, uploadBacklogSeconds: backlog });

  test("backlog levels are 30 and 45 time units", () => {
    expect(asrThresholds(60).backlogWarningSeconds).toBe(1800);
    expect(asrThresholds(60).backlogCriticalSeconds).toBe(2700);
    expect(t.backlogWarningSeconds).toBe(30);
  });

  test("each figure raises warning, then critical, at ASR's levels", () => {
    expect(processServerAlerts(stats(10, 10), ps(50, 1), t)).toEqual([]);
    const warn = processServerAlerts(stats(81, 81), ps(29, 31), t);
    expect(warn.map((a) => [a.code, a.level])).toEqual([
      [AlertCode.ALERT_CODE_CACHE_FREE_SPACE, Health.HEALTH_WARNING],
      [AlertCode.ALERT_CODE_UPLOAD_BACKLOG, Health.HEALTH_WARNING],
      [AlertCode.ALERT_CODE_CPU, Health.HEALTH_WARNING],
      [AlertCode.ALERT_CODE_MEMORY, Health.HEALTH_WARNING],
    ]);
    const crit = processServerAlerts(stats(96, 96), ps(24, 46), t);
    expect(crit.every((a) => a.level === Health.HEALTH_CRITICAL)).toBe(true);
    expect(crit[0]!.message).toBe("cache free space 24.0 % is below 25 %");
  });
});

function fakeMachine(name: string, uploadedBytes: number): Machine {
  return {
    machineId: `id-${name}`,
    name,
    processServerId: "ps",
    state: ReplicationState.REPLICATION_STATE_PROTECTED,
    health: Health.HEALTH_NORMAL,
    stats: {
      rpoSeconds: 0.5,
      pendingBytes: 10,
      throughputBytesPerSecond: 0,
      receivedSequence: 3,
      uploadedSequence: 2,
      processedSequence: 1,
      captureMode: 1,
      bytesSent: 0,
      capturedSequence: 4,
      capturedBytes: 4096,
      receivedBytes: 3072,
      uploadedBytes,
      processedBytes: 1024,
    },
  } as unknown as Machine;
}

describe("telemetry sampler", () => {
  test("samples machines and process servers, keeps the window, and keeps an alert's raise time while it holds", () => {
    let now = 1_000_000;
    const ps = { componentId: "ps", name: "ps-1", role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, health: Health.HEALTH_NORMAL, lastHeartbeat: new Date(now) } as Component;
    let uploaded = 0;
    const sampler = new TelemetrySampler({
      source: { machines: () => [fakeMachine("m1", uploaded)], components: () => [ps] },
      timeUnitSeconds: 1,
      intervalMs: 1000,
      windowSeconds: 3,
      now: () => now,
    });
    const psStats = (free: number) => ({ cacheUsedBytes: 1, cacheCapacityBytes: 10, cacheFreePercent: free, uploadBacklogBytes: 5, uploadBacklogSeconds: 1 });
    sampler.noteHeartbeat("ps", { cpuPercent: 5, memoryBytes: 1e8, memoryPercent: 1, hostCpuPercent: 20 }, psStats(28));
    const first = sampler.sampleNow();
    expect(first.machines[0]).toMatchObject({ name: "m1", capturedBytes: 4096, uploadedBytes: 0, rpoSeconds: 0.5 });
    expect(first.components[0]!.processServer?.cacheFreePercent).toBe(28);
    expect(first.alerts).toHaveLength(1);
    expect(first.alerts[0]).toMatchObject({ code: AlertCode.ALERT_CODE_CACHE_FREE_SPACE, level: Health.HEALTH_WARNING, raisedAt: new Date(1_000_000) });

    for (let i = 1; i <= 4; i++) {
      now += 1000;
      uploaded += 100;
      sampler.sampleNow();
    }
    const kept = sampler.samples();
    expect(kept.map((s) => s.machines[0]!.uploadedBytes)).toEqual([200, 300, 400]);
    expect(kept[2]!.alerts[0]!.raisedAt).toEqual(new Date(1_000_000));
    expect(sampler.samples(new Date(now - 1500)).length).toBe(2);

    sampler.noteHeartbeat("ps", { cpuPercent: 5, memoryBytes: 1e8, memoryPercent: 1, hostCpuPercent: 20 }, psStats(24));
    now += 1000;
    expect(sampler.sampleNow().alerts[0]).toMatchObject({ level: Health.HEALTH_CRITICAL, raisedAt: new Date(now) });
    sampler.noteHeartbeat("ps", { cpuPercent: 5, memoryBytes: 1e8, memoryPercent: 1, hostCpuPercent: 20 }, psStats(90));
    now += 1000;
    expect(sampler.sampleNow().alerts).toEqual([]);
  });

  test("process usage reports this process's CPU and memory", async () => {
    const u = new ProcessUsage();
    const until = Date.now() + 50;
    while (Date.now() < until) Math.sqrt(Math.random());
    const s = u.sample();
    expect(s.cpuPercent).toBeGreaterThan(0);
    expect(s.memoryBytes).toBeGreaterThan(1e6);
    expect(s.memoryPercent).toBeGreaterThan(0);
  });
});

describe("TelemetryService on a configuration server", () => {
  const dir = mkdtempSync(join(tmpdir(), "srlab-telemetry-"));
  let server: ConfigServer;
  beforeAll(async () => {
    server = new ConfigServer(testConfigServerOptions(dir, { telemetry: { intervalMs: 100, windowSeconds: 60 } }), silentLogger());
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a process server's heartbeat figures appear in the samples; only the admin may read them", async () => {
    const cs = new ConfigurationServiceClient(server.grpcAddress, channelCredentials(undefined));
    const telemetry = new TelemetryServiceClient(server.grpcAddress, channelCredentials(undefined));
    try {
      const reg = await unaryCall(cs, cs.register, {
        passphrase: "",
        joinToken: await joinToken(server, "process-server"),
        role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
        name: "ps-1",
        address: "127.0.0.1:1",
        location: SiteLocation.SITE_LOCATION_ON_PREMISES,
        disks: [],
        version: "test",
        certificateRequest: "",
        hostName: "",
        metricsAddress: "",
      });
      await unaryCall(cs, cs.heartbeat, {
        health: Health.HEALTH_NORMAL,
        issues: [],
        machines: [],
        componentStats: { cpuPercent: 12, memoryBytes: 64e6, memoryPercent: 96, hostCpuPercent: 30 },
        processServerStats: { cacheUsedBytes: 7, cacheCapacityBytes: 100, cacheFreePercent: 93, uploadBacklogBytes: 7, uploadBacklogSeconds: 0.2 },
        segmentKeyId: "",
      }, reg.credential);
      const since = new Date();
      await new Promise((r) => setTimeout(r, 350));
      const { samples } = await unaryCall(telemetry, telemetry.getSamples, { since }, server.adminCredential);
      expect(samples.length).toBeGreaterThanOrEqual(2);
      const last = samples[samples.length - 1]!;
      const ps = last.components.find((c) => c.name === "ps-1")!;
      expect(ps.processServer?.cacheFreePercent).toBe(93);
      expect(ps.stats?.cpuPercent).toBe(12);
      expect(last.alerts.map((a) => [a.componentName, a.code, a.level])).toEqual([["ps-1", AlertCode.ALERT_CODE_MEMORY, Health.HEALTH_CRITICAL]]);
      const settings = await unaryCall(telemetry, telemetry.getTelemetrySettings, {}, server.adminCredential);
      expect(settings).toMatchObject({ intervalSeconds: 0.1, windowSeconds: 60, timeUnitSeconds: 1 });
      await expect(unaryCall(telemetry, telemetry.getSamples, { since: undefined }, reg.credential)).rejects.toThrow(/admin credential/);
    } finally {
      cs.close();
      telemetry.close();
    }
  });
});
