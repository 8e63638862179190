import { describe, expect, test } from "vitest";
import { markerStrip, sparkline } from "../common/html/index.js";
import {
  AlertCode,
  type Component,
  ComponentRole,
  Health,
  type Job,
  type Machine,
  type RecoveryPoint,
  RecoveryPointType,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
  type TelemetrySample,
} from "../proto/index.js";
import { alertHistory, type DashboardSource, pageAt, renderDashboardPage, Snapshot } from "../config-server/dashboard/index.js";
import { TelemetrySampler } from "../config-server/telemetry/index.js";

describe("sparkline and marker strip", () => {
  test("a sparkline is an inline SVG; gaps split the line and text is escaped", () => {
    const svg = sparkline([0, 1, null, 2], { label: "RPO <of> m1" }).value;
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("&lt;of&gt;");
    expect(svg.match(/<polyline/g)?.length).toBe(1);
    expect(svg.match(/<circle/g)?.length).toBe(1);
  });

  test("markers sit at their time on the strip, named ones carry their label, all escaped", () => {
    const strip = markerStrip({
      startMs: 0,
      endMs: 1000,
      ranges: [{ fromMs: 250, toMs: 1000, label: "recoverable", kind: "recoverable" }],
      markers: [
        { atMs: 500, label: "<b>tag</b>", kind: "app-consistent", named: true, data: { sequence: 7 } },
        { atMs: 100, label: "seq 3", kind: "crash-consistent" },
      ],
    }).value;
    expect(strip).toContain("left:50.00%");
    expect(strip).toContain('data-sequence="7"');
    expect(strip).toContain("&lt;b&gt;tag&lt;/b&gt;");
    expect(strip).not.toContain("<b>tag");
    expect(strip).toContain("left:25.00%;width:75.00%");
    expect(markerStrip({ startMs: 0, endMs: 1, ranges: [], markers: [], empty: "no points" }).value).toContain("no points");
  });
});

const at = (s: number) => new Date(1_700_000_000_000 + s * 1000);
const sample = (s: number, alerts: TelemetrySample["alerts"], machineHealth = Health.HEALTH_NORMAL): TelemetrySample => ({
  time: at(s),
  machines: [{ machineId: "m1", name: "machine-1", health: machineHealth } as TelemetrySample["machines"][number]],
  components: [],
  alerts,
});
const cacheAlert = (level: Health, raisedAt: Date) => ({
  componentId: "ps1",
  componentName: "process-server-1",
  code: AlertCode.ALERT_CODE_CACHE_FREE_SPACE,
  level,
  value: 20,
  threshold: 25,
  message: "cache free space 20.0 % is below 25 %",
  raisedAt,
});

describe("alert history", () => {
  test("an alert is raised when it first appears and cleared at the first sample without it", () => {
    const events = alertHistory([
      sample(0, []),
      sample(1, [cacheAlert(Health.HEALTH_WARNING, at(1))]),
      sample(2, [cacheAlert(Health.HEALTH_WARNING, at(1))]),
      sample(3, []),
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: "process-server-1", code: "CACHE_FREE_SPACE", raisedAt: at(1), clearedAt: at(3) });
  });

  test("a change of level ends one alert and raises the next; a machine leaving Normal is an alert while it lasts", () => {
    const events = alertHistory([
      sample(0, [cacheAlert(Health.HEALTH_WARNING, at(0))]),
      sample(1, [cacheAlert(Health.HEALTH_CRITICAL, at(1))], Health.HEALTH_WARNING),
      sample(2, [cacheAlert(Health.HEALTH_CRITICAL, at(1))], Health.HEALTH_WARNING),
    ]);
    const cache = events.filter((e) => e.code === "CACHE_FREE_SPACE");
    expect(cache.map((e) => [e.level, e.raisedAt, e.clearedAt])).toEqual([
      [Health.HEALTH_CRITICAL, at(1), undefined],
      [Health.HEALTH_WARNING, at(0), at(1)],
    ]);
    const machine = events.find((e) => e.code === "MACHINE_HEALTH");
    expect(machine).toMatchObject({ source: "machine-1", raisedAt: at(1) });
    expect(machine!.clearedAt).toBeUndefined();
  });
});

describe("pages", () => {
  const ps: Component = {
    componentId: "ps1",
    name: "process-server-1",
    role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
    address: "10.0.0.5:7001",
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    health: Health.HEALTH_NORMAL,
    issues: [],
    lastHeartbeat: new Date(),
    registeredAt: new Date(),
    version: "0.1.0",
    hostName: "ps-host",
    metricsAddress: "",
  };
  const machine = {
    machineId: "m1",
    name: "machine-<1>",
    agentComponentId: "",
    processServerId: "ps1",
    policyName: "default",
    state: ReplicationState.REPLICATION_STATE_PROTECTED,
    health: Health.HEALTH_NORMAL,
    issues: [],
    disks: [],
    azureDisks: [],
    stats: { rpoSeconds: 2.5 },
  } as unknown as Machine;
  const point: RecoveryPoint = {
    recoveryPointId: "rp1",
    machineId: "m1",
    time: new Date(Date.now() - 10_000),
    sequence: 42,
    type: RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT,
    tagName: "before-upgrade",
    disksCovered: 1,
    disksTotal: 1,
    processed: true,
    consistencyGroup: "",
    metadataMode: false,
    direction: ReplicationDirection.REPLICATION_DIRECTION_UNSPECIFIED,
  };
  const source: DashboardSource = {
    configServer: () => ({ name: "config-server", address: "127.0.0.1:7000", version: "0.1.0", storage: { endpoint: "http://127.0.0.1:10000/devstoreaccount1", detail: "blob container srlab" } }),
    components: () => [ps],
    machines: () => [machine],
    jobs: () => [] as Job[],
    points: () => [point],
    policies: () => [],
    jobReport: () => undefined,
    sampler: new TelemetrySampler({ source: { machines: () => [machine], components: () => [ps] }, timeUnitSeconds: 1 }),
  };
  source.sampler.sampleNow();

  test("a machine's page puts its tag on the points timeline and escapes its name", () => {
    const snap = new Snapshot(source);
    const page = pageAt(`/machines/${encodeURIComponent("machine-<1>")}`, snap)!;
    const markup = renderDashboardPage(page, "/machines/x");
    expect(markup).toContain('data-kind="app-consistent" data-label="before-upgrade"');
    expect(markup).toContain('data-rpo-seconds="2.5"');
    expect(markup).toContain("machine-&lt;1&gt;");
    expect(markup).not.toContain("machine-<1>");
  });

  test("unknown pages, unknown machines and broken escapes are not found", () => {
    const snap = new Snapshot(source);
    expect(pageAt("/machines/nobody", snap)).toBeUndefined();
    expect(pageAt("/machines/%E0%A4%A", snap)).toBeUndefined();
    expect(pageAt("/admin", snap)).toBeUndefined();
    for (const path of ["/", "/machines", "/process-servers", "/jobs", "/alerts"]) expect(pageAt(path, snap), path).toBeDefined();
  });

  test("the topology shows each component with its host and version", () => {
    const markup = renderDashboardPage(pageAt("/", new Snapshot(source))!, "/");
    expect(markup).toContain('data-component="process-server-1"');
    expect(markup).toContain("10.0.0.5");
    expect(markup).toContain('data-component="storage"');
    expect(markup).toContain('data-component="config-server"');
  });
});
