import { hostname } from "node:os";
import { resolve } from "node:path";
import {
  CaptureMode,
  ComponentRole,
  type Component,
  type FailoverInfo,
  Health,
  type Machine,
  ReplicationDirection,
  ReplicationState,
  SiteLocation,
} from "../../proto/index.js";
import { healthIssueCodeName } from "../../common/enum-names/index.js";
import { AdminClient } from "../admin-client.js";
import { isJoinedDirectory, joinedComponents, joinedStatusLines } from "../join/index.js";
import { daemonStatuses, LabLayout } from "../lab/index.js";
import { prometheusTargets, type RemoteDaemon, remoteTargets } from "../service/index.js";
import { enumLabel, formatBytes, formatTable, printJson } from "../output.js";
import { interruptSignal, LiveView, type Palette, palette, wantsColour, watch } from "../terminal/index.js";

/** The status document `srlab status --json` prints; scripts rely on these names. */
export function statusDocument(client: AdminClient, components: Component[], machines: Machine[]) {
  const m = client.manifest;
  return {
    caFile: m.caFile,
    configServer: { address: m.configServerAddress },
    storage: { kind: m.storage.kind, connectionString: m.storage.connectionString, directory: m.storage.directory },
    components: [
      {
        name: "config-server",
        role: "configuration-server",
        address: m.configServerAddress,
        host: hostOf(m.configServerAddress),
        hostName: hostname(),
        health: "normal",
        issues: [] as unknown[],
      },
      ...components.map((c) => ({
        componentId: c.componentId,
        name: c.name,
        role: enumLabel(ComponentRole, c.role, "COMPONENT_ROLE_"),
        address: c.address,
        // Where it runs: the host of its address, the host name it reported, its /metrics.
        host: hostOf(c.address),
        hostName: c.hostName || null,
        metricsAddress: c.metricsAddress || null,
        location: enumLabel(SiteLocation, c.location, "SITE_LOCATION_"),
        health: enumLabel(Health, c.health, "HEALTH_"),
        issues: c.issues.map((i) => ({ health: enumLabel(Health, i.health, "HEALTH_"), code: healthIssueCodeName(i.code), message: i.message })),
        lastHeartbeat: c.lastHeartbeat?.toISOString() ?? null,
      })),
    ],
    machines: machines.map((x) => machineDocument(x, components)),
    daemons: daemonStatuses(client.layout, m),
  };
}

function machineDocument(x: Machine, components: Component[]) {
  const stats = x.stats;
  const disk = (d: Machine["disks"][number]) => ({
    index: d.index,
    diskId: d.diskId,
    path: d.imagePath,
    sizeBytes: d.sizeBytes,
    nbd: d.nbdUri,
    nbdUnix: d.nbdUnixUri,
  });
  return {
    machineId: x.machineId,
    name: x.name,
    state: enumLabel(ReplicationState, x.state, "REPLICATION_STATE_"),
    health: enumLabel(Health, x.health, "HEALTH_"),
    issues: x.issues.map((i) => ({ health: enumLabel(Health, i.health, "HEALTH_"), code: healthIssueCodeName(i.code), message: i.message })),
    direction: enumLabel(ReplicationDirection, x.direction, "REPLICATION_DIRECTION_"),
    policy: x.policyName || null,
    processServer: components.find((c) => c.componentId === x.processServerId)?.name ?? null,
    rpoSeconds: stats?.rpoSeconds ?? 0,
    pendingBytes: stats?.pendingBytes ?? 0,
    processedLagSeconds: stats?.processedLagSeconds ?? 0,
    unprocessedBytes: stats?.unprocessedBytes ?? 0,
    throughputBytesPerSecond: stats?.throughputBytesPerSecond ?? 0,
    capturedSequence: stats?.capturedSequence ?? 0,
    receivedSequence: stats?.receivedSequence ?? 0,
    uploadedSequence: stats?.uploadedSequence ?? 0,
    processedSequence: stats?.processedSequence ?? 0,
    captureMode: enumLabel(CaptureMode, stats?.captureMode ?? 0, "CAPTURE_MODE_"),
    captureModeSeconds: {
      data: stats?.dataModeSeconds ?? 0,
      metadata: stats?.metadataModeSeconds ?? 0,
      bitmap: stats?.bitmapModeSeconds ?? 0,
    },
    resyncRequired: x.resyncRequired,
    resyncReason: x.resyncReason || null,
    nextResyncAt: x.nextResync?.toISOString() ?? null,
    lastRecoveryPoint: x.lastRecoveryPoint
      ? { id: x.lastRecoveryPoint.recoveryPointId, time: x.lastRecoveryPoint.time?.toISOString(), sequence: x.lastRecoveryPoint.sequence }
      : null,
    disks: x.disks.map(disk),
    azureDisks: x.azureDisks.map((d) => ({ ...disk(d), blob: d.blobName })),
    networkMapping: x.networkMapping ?? null,
    failover: failoverDocument(x.failover),
    testFailover: failoverDocument(x.testFailover),
  };
}

function failoverDocument(f: FailoverInfo | undefined) {
  if (!f) return null;
  return {
    recoveryPointId: f.recoveryPointId || null,
    sequence: f.sequence,
    network: f.network || null,
    ipAddress: f.ipAddress || null,
    requestedAt: f.requestedAt?.toISOString() ?? null,
    achievedRpoSeconds: f.achievedRpoSeconds,
    rtoSeconds: f.rtoSeconds,
    disks: f.disks.map((d) => ({ index: d.index, blob: d.blobName, sizeBytes: d.sizeBytes })),
  };
}

/** What one status frame needs: the document plus each policy's RPO threshold for colouring. */
async function fetchStatus(client: AdminClient) {
  const [{ components }, { machines }, { policies }] = await Promise.all([
    client.call(client.client.listComponents, {}),
    client.call(client.client.listMachines, {}),
    client.call(client.client.listPolicies, {}),
  ]);
  const thresholds = new Map(policies.map((p) => [p.name, p.rpoThresholdSeconds]));
  return { doc: statusDocument(client, components, machines), thresholds };
}

type StatusDocument = ReturnType<typeof statusDocument>;

/**
 * RPO coloured against the machine's policy threshold: green below half of it, yellow up to it,
 * red beyond (where ASR raises its RPO alert).
 */
export function rpoCell(rpoSeconds: number, thresholdSeconds: number | undefined, colours: Palette): string {
  const text = `${rpoSeconds.toFixed(1)} s`;
  if (!thresholdSeconds) return text;
  if (rpoSeconds > thresholdSeconds) return colours.red(text);
  if (rpoSeconds > thresholdSeconds / 2) return colours.yellow(text);
  return colours.green(text);
}

function healthCell(health: string, colours: Palette): string {
  if (health === "critical") return colours.red(health);
  if (health === "warning") return colours.yellow(health);
  return health === "normal" ? colours.green(health) : health;
}

/** The status tables as lines, shared by `srlab status`, `--watch` and the foreground `srlab up`. */
export function statusLines(doc: StatusDocument, thresholds: ReadonlyMap<string, number>, colours: Palette, dir: string): string[] {
  const lines = [`Lab ${dir}  (CA: ${doc.caFile})`, ""];
  lines.push(
    ...formatTable(
      ["COMPONENT", "ROLE", "HOST", "ADDRESS", "HEALTH", "LAST HEARTBEAT"],
      doc.components.map((c) => [
        c.name,
        c.role,
        c.hostName ?? "-",
        c.address,
        healthCell(c.health, colours) + (c.issues.length ? ` (${(c.issues as Array<{ message: string }>).map((i) => i.message).join("; ")})` : ""),
        "lastHeartbeat" in c && c.lastHeartbeat ? ago(c.lastHeartbeat) : "-",
      ]),
    ),
  );
  lines.push("");
  lines.push(
    ...formatTable(
      ["MACHINE", "STATE", "HEALTH", "RPO", "PENDING", "PROCESSED LAG", "THROUGHPUT", "CAPTURE", "LAST POINT", "DISKS"],
      doc.machines.map((m) => [
        m.name,
        m.state + (m.direction === "azure-to-on-premises" ? " (failback)" : "") + (m.testFailover ? " +test" : ""),
        healthCell(m.health, colours),
        rpoCell(m.rpoSeconds, m.policy ? thresholds.get(m.policy) : undefined, colours),
        formatBytes(m.pendingBytes),
        `${m.processedLagSeconds.toFixed(1)} s (${formatBytes(m.unprocessedBytes)})`,
        `${formatBytes(m.throughputBytesPerSecond)}/s`,
        m.captureMode,
        m.lastRecoveryPoint?.time ? ago(m.lastRecoveryPoint.time) : "-",
        m.disks.map((d) => `${formatBytes(d.sizeBytes)} ${d.nbd}`).join(", "),
      ]),
    ),
  );
  for (const m of doc.machines) {
    const t = m.captureModeSeconds;
    lines.push(`  ${m.name}: capture ${m.captureMode}; time in data ${humanDuration(t.data)}, metadata ${humanDuration(t.metadata)}, bitmap ${humanDuration(t.bitmap)}`);
    for (const d of m.disks) lines.push(`  ${m.name}: disk ${d.index} ${d.path} (${formatBytes(d.sizeBytes)})`);
    for (const i of m.issues) lines.push(`  ${m.name}: ${healthCell(i.health, colours)}: ${i.message}`);
    if (m.nextResyncAt) lines.push(`  ${m.name}: next resync ${nextRun(m.nextResyncAt)}`);
  }
  lines.push(
    "",
    ...formatTable(
      ["DAEMON", "PID", "STATE", "RESTARTS", "LAST EXIT"],
      doc.daemons.map((d) => [d.name, d.pid || "-", d.state, d.restarts, d.lastExit ? `${d.lastExit} (${ago(d.lastExitAt!)})` : "-"]),
    ),
  );
  return lines;
}

export interface StatusOptions {
  json?: boolean;
  /** Redraw every interval until Ctrl-C. */
  watch?: boolean;
  /** Print Prometheus file_sd targets for the daemons' /metrics instead of the tables. */
  prometheusSd?: boolean;
  intervalMs?: number;
}

export async function statusCommand(dir: string, options: StatusOptions): Promise<void> {
  if (options.prometheusSd) {
    // From the lab's own files: works while the configuration server is down, which is when
    // Prometheus most needs to keep scraping the others.
    const layout = new LabLayout(dir);
    const manifest = layout.read();
    printJson([...prometheusTargets(layout, manifest), ...remoteTargets(layout, manifest, await joinedDaemons(dir))]);
    return;
  }
  // A joined host has no admin credential: say what runs here and where the lab's status is.
  if (isJoinedDirectory(dir)) {
    const components = await joinedComponents(dir);
    if (options.json) printJson({ joined: true, dir: resolve(dir), components });
    else for (const line of joinedStatusLines(dir, components)) console.log(line);
    return;
  }
  const client = AdminClient.forDir(dir);
  try {
    if (options.watch) {
      await watchStatus(client, options.intervalMs ?? 1000);
      return;
    }
    const { doc, thresholds } = await fetchStatus(client);
    if (options.json) {
      printJson(doc);
      return;
    }
    for (const line of statusLines(doc, thresholds, palette(wantsColour(process.stdout)), client.layout.dir)) console.log(line);
  } finally {
    client.close();
  }
}

/** The host part of host:port (an IPv6 host without its brackets); empty for no address. */
function hostOf(address: string): string {
  const i = address.lastIndexOf(":");
  return (i > 0 ? address.slice(0, i) : address).replace(/^\[|\]$/g, "");
}

/** Daemons registered with the configuration server (those on other hosts included); none when it is unreachable. */
async function joinedDaemons(dir: string): Promise<RemoteDaemon[]> {
  try {
    return await AdminClient.using(dir, async (client) => {
      const { components } = await client.call(client.client.listComponents, {}, 5_000);
      return components.map((c) => ({ name: c.name, role: enumLabel(ComponentRole, c.role, "COMPONENT_ROLE_"), metricsAddress: c.metricsAddress }));
    });
  } catch {
    return [];
  }
}

function humanDuration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function nextRun(iso: string): string {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s <= 1 ? "now" : `in ${humanDuration(s)} (${iso})`;
}

/**
 * The status tables refreshed in place until Ctrl-C (or `signal`); on a pipe, one plain frame per
 * interval. A frame that cannot reach the lab says so and the loop goes on.
 */
export async function watchStatus(client: AdminClient, intervalMs: number, signal?: AbortSignal, view = new LiveView()): Promise<void> {
  const interrupt = signal ? undefined : interruptSignal();
  const colours = palette(wantsColour(process.stdout));
  try {
    await watch(
      view,
      async () => {
        const { doc, thresholds } = await fetchStatus(client);
        return [`${new Date().toISOString()}  every ${intervalMs / 1000} s, Ctrl-C to stop`, ...statusLines(doc, thresholds, colours, client.layout.dir)];
      },
      {
        intervalMs,
        signal: signal ?? interrupt!.signal,
        onError: (err) => [`${new Date().toISOString()}  ${colours.red("cannot reach the lab")}: ${(err as Error).message}`],
      },
    );
  } finally {
    interrupt?.dispose();
  }
}

function ago(iso: string): string {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 120 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(0)} min ago`;
}
