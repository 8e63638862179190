import { Gauge } from "prom-client";
import type { Registry } from "../common/metrics/index.js";
import { type Component, ComponentRole, Health, type Machine, ReplicationState } from "../proto/index.js";

export interface ConfigServerMetricsSource {
  machines(): Machine[];
  components(): Component[];
}

const severity = (h: Health) => (h === Health.HEALTH_CRITICAL ? 2 : h === Health.HEALTH_WARNING ? 1 : 0);
const label = (names: Record<number, string>, value: number, prefix: string) =>
  (names[value] ?? "unknown").replace(prefix, "").toLowerCase().replace(/_/g, "-");

/**
 * The deployment as the configuration server judges it, read from its store at scrape time:
 * per machine (by name, `machine`) RPO, pending bytes, health and resync; per daemon (`daemon`,
 * `role`) health and heartbeat age. `srlab_cs_machine_info` maps the `machine_id` that process
 * servers and master targets label their series with to the machine's name.
 */
export function registerConfigServerMetrics(registry: Registry, source: ConfigServerMetricsSource): void {
  const registers = [registry];
  const perMachine = (name: string, help: string, read: (m: Machine) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["machine"],
      registers,
      collect() {
        this.reset(); // a removed machine disappears instead of keeping its last value
        for (const m of source.machines()) this.set({ machine: m.name }, read(m));
      },
    });
  new Gauge({
    name: "srlab_cs_machine_info",
    help: "Always 1: a protected machine's name, id, process server and replication state",
    labelNames: ["machine", "machine_id", "process_server", "state"],
    registers,
    collect() {
      this.reset();
      const components = source.components();
      for (const m of source.machines()) {
        const ps = components.find((c) => c.componentId === m.processServerId)?.name ?? "";
        this.set({ machine: m.name, machine_id: m.machineId, process_server: ps, state: label(ReplicationState, m.state, "REPLICATION_STATE_") }, 1);
      }
    },
  });
  perMachine("srlab_cs_machine_rpo_seconds", "Age of the oldest write of the machine not yet in storage, as srlab status shows it", (m) => m.stats?.rpoSeconds ?? 0);
  perMachine("srlab_cs_machine_pending_bytes", "Bytes the machine changed that are not yet in storage", (m) => m.stats?.pendingBytes ?? 0);
  perMachine("srlab_cs_machine_health_severity", "Machine health: 0 normal, 1 warning, 2 critical", (m) => severity(m.health));
  perMachine("srlab_cs_machine_resync_required", "1 while the machine needs a checksum resync", (m) => (m.resyncRequired ? 1 : 0));

  const perDaemon = (name: string, help: string, read: (c: Component) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["daemon", "role"],
      registers,
      collect() {
        this.reset();
        for (const c of source.components()) this.set({ daemon: c.name, role: label(ComponentRole, c.role, "COMPONENT_ROLE_") }, read(c));
      },
    });
  perDaemon("srlab_cs_daemon_health_severity", "Health a daemon last reported: 0 normal, 1 warning, 2 critical", (c) => severity(c.health));
  perDaemon("srlab_cs_daemon_heartbeat_age_seconds", "Seconds since the daemon's last heartbeat (-1 before the first)", (c) =>
    c.lastHeartbeat ? Math.max(0, (Date.now() - c.lastHeartbeat.getTime()) / 1000) : -1,
  );
}
