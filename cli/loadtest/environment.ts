import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import type { AlertThresholds } from "../../proto/index.js";
import type { AdminClient } from "../admin-client.js";
import type { LoadReport } from "./report.js";

/** Where a load test ran: the machine, Node, srlab, the storage kind and the lab's process servers. */
export function environment(client: AdminClient, thresholds: AlertThresholds | null, timeUnitSeconds: number): LoadReport["environment"] {
  const s = client.manifest.storage;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    srlabVersion: srlabVersion(),
    storage: s.kind === "directory" ? "directory" : s.azuritePort ? "azurite" : "azure",
    timeUnitSeconds,
    processServers: client.manifest.components.filter((c) => c.role === "process-server").map((c) => c.name),
    alertThresholds: thresholds,
  };
}

export function srlabVersion(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "srlab") return pkg.version ?? "unknown";
    } catch {
      // not at this level
    }
  }
  return "unknown";
}
