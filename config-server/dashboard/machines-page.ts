import { formatBytes, formatRate, html, type SafeHtml, sparkline, table } from "../../common/html/index.js";
import { CaptureMode, type Machine, RecoveryPointType, ReplicationDirection, ReplicationState } from "../../proto/index.js";
import type { DashboardPage } from "./layout.js";
import { ago, enumLabel, healthWithReasons, rpoText } from "./labels.js";
import type { Snapshot } from "./snapshot.js";

/** Minutes of RPO history in each machine's sparkline. */
const SPARK_SECONDS = 300;

export function stateText(m: Machine): string {
  const state = enumLabel(ReplicationState, m.state, "REPLICATION_STATE_");
  return `${state}${m.testFailoverActive ? " + test failover" : ""}`;
}

export function directionText(m: Machine): string {
  return m.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES ? "Azure → on-premises (failback)" : "on-premises → Azure";
}

export function captureText(m: Machine): string {
  return m.stats?.captureMode ? enumLabel(CaptureMode, m.stats.captureMode, "CAPTURE_MODE_") : "–";
}

/** The RPO figure a test (and the eye) reads: `data-rpo-seconds` carries the exact value. */
export function rpoCell(m: Machine): SafeHtml {
  const rpo = m.stats?.rpoSeconds ?? 0;
  return html`<span class="rpo" data-machine="${m.name}" data-rpo-seconds="${String(rpo)}">${rpoText(rpo)}</span>`;
}

/** Every machine: state, direction, health with reasons, RPO now and over the last minutes, throughput, capture mode, disks, last point. */
export function machinesPage(snap: Snapshot): DashboardPage {
  return { title: "Machines", parts: [{ region: "machines", render: () => machinesTable(snap) }] };
}

function machinesTable(snap: Snapshot): SafeHtml {
  const recent = snap.samples(SPARK_SECONDS);
  const history = (id: string) => recent.map((s) => s.machines.find((x) => x.machineId === id)?.rpoSeconds ?? null);
  return table<Machine>(
    [
      { header: "machine", cell: (m) => html`<a href="/machines/${encodeURIComponent(m.name)}" data-machine-link="${m.name}">${m.name}</a>` },
      { header: "state", cell: (m) => html`${stateText(m)}<div class="reason">${directionText(m)}</div>` },
      { header: "health", cell: (m) => healthWithReasons(m.health, m.issues) },
      { header: "RPO", numeric: true, cell: (m) => rpoCell(m) },
      {
        header: `last ${SPARK_SECONDS / 60} min`,
        cell: (m) => sparkline(history(m.machineId), { label: `RPO of ${m.name} over the last ${SPARK_SECONDS / 60} minutes`, max: 1 }),
      },
      { header: "pending", numeric: true, cell: (m) => formatBytes(m.stats?.pendingBytes ?? 0) },
      { header: "throughput", numeric: true, cell: (m) => formatRate(m.stats?.throughputBytesPerSecond ?? 0) },
      { header: "capture", cell: (m) => captureText(m) },
      { header: "disks", cell: (m) => html`${m.disks.map((d) => html`<div>${formatBytes(d.sizeBytes)} <span class="code">${d.nbdUri}</span></div>`)}` },
      {
        header: "last point",
        cell: (m) =>
          m.lastRecoveryPoint
            ? html`${ago(m.lastRecoveryPoint.time, snap.nowMs)}<div class="reason">${m.lastRecoveryPoint.type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT ? `app-consistent ${m.lastRecoveryPoint.tagName}` : "crash-consistent"}, seq ${m.lastRecoveryPoint.sequence}</div>`
            : "none",
      },
    ],
    snap.machines(),
    "no machines registered",
  );
}
