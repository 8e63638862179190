import { existsSync, readFileSync } from "node:fs";
import type { LabLayout, LabManifest } from "../lab/index.js";

/** One entry of Prometheus's file-based service discovery (file_sd_configs). */
export interface PrometheusTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/**
 * Scrape targets for every daemon of a lab whose /metrics address is known: each daemon writes
 * it to its ready file when it starts (metrics ports are picked at start, so the config file does
 * not know them). Labels say which daemon it is without clashing with the `component` label the
 * daemons put on their own series.
 */
export function prometheusTargets(layout: LabLayout, manifest: LabManifest): PrometheusTargetGroup[] {
  const groups: PrometheusTargetGroup[] = [];
  for (const c of manifest.components) {
    if (c.role === "azurite" || !existsSync(c.readyFile)) continue;
    let url: URL;
    try {
      const ready = JSON.parse(readFileSync(c.readyFile, "utf8")) as { metricsUrl?: unknown };
      if (typeof ready.metricsUrl !== "string") continue;
      url = new URL(ready.metricsUrl);
    } catch {
      continue; // a ready file being rewritten by a restarting daemon: its next start writes it whole
    }
    const labels: Record<string, string> = { srlab_daemon: c.name, srlab_role: c.role === "agent" ? "mobility-agent" : c.role, srlab_lab: layout.dir };
    if (url.pathname !== "/metrics") labels.__metrics_path__ = url.pathname;
    groups.push({ targets: [url.host], labels });
  }
  return groups;
}

/** A daemon the configuration server knows that runs on another host (srlab join). */
export interface RemoteDaemon {
  name: string;
  /** "process-server", "mobility-agent", "master-target". */
  role: string;
  metricsAddress: string;
}

/**
 * Targets for daemons that joined from other hosts: they are not in lab.json, so their /metrics
 * address comes from their registration. Daemons this lab runs itself are left to the ready files.
 */
export function remoteTargets(layout: LabLayout, manifest: LabManifest, remote: RemoteDaemon[]): PrometheusTargetGroup[] {
  const local = new Set(manifest.components.map((c) => c.name));
  return remote
    .filter((d) => d.metricsAddress && !local.has(d.name))
    .map((d) => ({ targets: [d.metricsAddress], labels: { srlab_daemon: d.name, srlab_role: d.role, srlab_lab: layout.dir } }));
}
