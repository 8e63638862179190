import { html, type SafeHtml } from "../../common/html/index.js";
import { type Component, ComponentRole, Health, HealthIssueCode, SiteLocation } from "../../proto/index.js";
import type { DashboardPage } from "./layout.js";
import { ago, healthLabel, healthWithReasons, hostOf } from "./labels.js";
import type { Snapshot } from "./snapshot.js";

/** The issues the storage card shows. */
const STORAGE_CODES = new Set([HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNREACHABLE, HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNAVAILABLE]);

interface CardFields {
  name: string;
  role: string;
  health: Health;
  issues: Component["issues"];
  address: string;
  version: string;
  heartbeat: string;
  extra?: Array<[string, string]>;
}

function card(f: CardFields): SafeHtml {
  const rows: Array<[string, string]> = [
    ["address", f.address || "–"],
    ["host", hostOf(f.address)],
    ["version", f.version || "–"],
    ["heartbeat", f.heartbeat],
    ...(f.extra ?? []),
  ];
  return html`<div class="card ${healthLabel(f.health)}" data-component="${f.name}" data-role="${f.role}"><div class="title"><span>${f.name}</span></div>${healthWithReasons(f.health, f.issues)}<dl>${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl></div>`;
}

function componentCard(c: Component, now: number, role: string, extra?: Array<[string, string]>): SafeHtml {
  return card({ name: c.name, role, health: c.health, issues: c.issues, address: c.address, version: c.version, heartbeat: ago(c.lastHeartbeat, now), extra });
}

/**
 * Where the data goes: agents → process servers → storage (Azure), and on the way back storage →
 * the process server in Azure → the master target → on-premises disks; the configuration server
 * above them all. Each component with health, address, host, version and last heartbeat.
 */
export function topologyPage(snap: Snapshot): DashboardPage {
  return {
    title: "Topology",
    parts: [{ region: "topology", render: () => topology(snap) }],
  };
}

function topology(snap: Snapshot): SafeHtml {
  const now = snap.nowMs;
  const cs = snap.source.configServer();
  const components = snap.components();
  const machines = snap.machines();
  const of = (role: ComponentRole, location?: SiteLocation) =>
    components.filter((c) => c.role === role && (location === undefined || c.location === location || (location === SiteLocation.SITE_LOCATION_ON_PREMISES && c.location === SiteLocation.SITE_LOCATION_UNSPECIFIED)));
  const agents = of(ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT);
  const onPremPs = of(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, SiteLocation.SITE_LOCATION_ON_PREMISES);
  const azurePs = of(ComponentRole.COMPONENT_ROLE_PROCESS_SERVER, SiteLocation.SITE_LOCATION_AZURE);
  const mts = of(ComponentRole.COMPONENT_ROLE_MASTER_TARGET);
  const machineOfAgent = (c: Component) => machines.find((m) => m.agentComponentId === c.componentId || m.azureAgentComponentId === c.componentId);
  const servedBy = (ps: Component) => machines.filter((m) => m.processServerId === ps.componentId || m.forwardProcessServerId === ps.componentId).map((m) => m.name);
  const storageIssues = components.flatMap((c) => c.issues.filter((i) => STORAGE_CODES.has(i.code)).map((i) => ({ ...i, message: `${c.name}: ${i.message}` })));
  const storageHealth = storageIssues.reduce((h, i) => Math.max(h, i.health), Health.HEALTH_NORMAL as number) as Health;
  const lane = (title: string, cards: SafeHtml[], empty: string) => html`<div class="lane"><h3>${title}</h3>${cards.length ? cards : html`<p class="empty">${empty}</p>`}</div>`;
  const arrow = html`<div class="arrow" aria-hidden="true">→</div>`;
  const storageCard = card({
    name: "storage",
    role: "storage",
    health: storageHealth,
    issues: storageIssues,
    address: cs.storage.endpoint,
    version: "",
    heartbeat: "via the process servers",
    extra: [["holds", cs.storage.detail]],
  });
  return html`
<div class="lane" style="max-width:420px">${card({ name: cs.name, role: "configuration-server", health: Health.HEALTH_NORMAL, issues: [], address: cs.address, version: cs.version, heartbeat: "serving this page", extra: [["coordinates", `${components.length} components, ${machines.length} machines`]] })}</div>
<div class="topology">
${lane("Protected machines (agents)", agents.map((a) => {
  const m = machineOfAgent(a);
  return componentCard(a, now, "agent", m ? [["machine", m.name], ["process server", snap.componentName(m.processServerId) || "–"]] : undefined);
}), "no agents registered")}
${arrow}
${lane("Process servers (on-premises)", onPremPs.map((p) => componentCard(p, now, "process-server", [["machines", servedBy(p).join(", ") || "none"]])), "no process servers")}
${arrow}
${lane("Azure storage", [storageCard], "")}
<div class="way-back topology">
${lane("Azure storage (failback source)", [html`<div class="card"><div class="title">replica page blobs</div><dl><dt>read by</dt><dd>the process server in Azure</dd></dl></div>`], "")}
${arrow}
${lane("Process server (Azure)", azurePs.map((p) => componentCard(p, now, "process-server", [["machines", servedBy(p).join(", ") || "none"]])), "no process server in Azure")}
${arrow}
${lane("Master target (on-premises)", mts.map((m) => componentCard(m, now, "master-target")), "no master target")}
</div>
</div>`;
}
