import { join } from "node:path";
import { stringify } from "yaml";
import type { LabPki } from "../../common/tls/index.js";
import type { LabLayout, LabManifest } from "./lab-layout.js";

/** What every daemon of the lab shares in its config file. */
function base(layout: LabLayout, pki: LabPki, name: string, grpcPort: number) {
  const files = pki.components[name]!;
  return {
    name,
    dataDir: layout.dataDir(name),
    listen: { host: "127.0.0.1", port: grpcPort },
    metrics: { host: "127.0.0.1", port: 0 },
    log: { level: "info", format: "json" },
    tls: { caFile: pki.caFile, certFile: files.certFile, keyFile: files.keyFile },
    readyFile: join(layout.runDir, `${name}.ready.json`),
    // Frequent reports keep srlab status close to real time in a lab.
    heartbeatIntervalMs: 1000,
  };
}

export function configServerConfig(layout: LabLayout, pki: LabPki, manifest: LabManifest, grpcPort: number, dashboardPort = 0): string {
  return stringify({
    ...base(layout, pki, "config-server", grpcPort),
    // A port of its own chosen once, so the dashboard's address survives restarts.
    dashboard: { enabled: true, host: "127.0.0.1", port: dashboardPort },
    passphrase: manifest.passphrase,
    // The configuration server holds the lab CA: it signs the certificates of hosts that join (srlab join).
    caKeyFile: join(layout.pkiDir, "ca-key.pem"),
    timeUnitSeconds: manifest.timeUnitSeconds,
    storage: {
      kind: manifest.storage.kind,
      connectionString: manifest.storage.connectionString,
      directory: manifest.storage.directory,
      container: "srlab",
    },
  });
}

/** Where the configuration server is; srlab up adds a join token before the first start (lab-join.ts). */
function link(manifest: LabManifest) {
  return { address: manifest.configServerAddress };
}

export function processServerConfig(
  layout: LabLayout,
  pki: LabPki,
  manifest: LabManifest,
  name: string,
  grpcPort: number,
  location: "on-premises" | "azure",
): string {
  return stringify({ ...base(layout, pki, name, grpcPort), configServer: link(manifest), location });
}

export function masterTargetConfig(layout: LabLayout, pki: LabPki, manifest: LabManifest, name: string, grpcPort: number): string {
  return stringify({ ...base(layout, pki, name, grpcPort), configServer: link(manifest) });
}

export function agentConfig(
  layout: LabLayout,
  pki: LabPki,
  manifest: LabManifest,
  name: string,
  grpcPort: number,
  nbdPort: number,
  diskSizeBytes: number,
  disks: number,
): string {
  const dataDir = layout.dataDir(name);
  return stringify({
    ...base(layout, pki, name, grpcPort),
    configServer: link(manifest),
    disks: Array.from({ length: disks }, (_, i) => ({ path: join(dataDir, `disk-${i}.img`), sizeBytes: diskSizeBytes })),
    nbd: { host: "127.0.0.1", port: nbdPort, socketPath: join(dataDir, "nbd.sock") },
    retry: { timeUnitMs: manifest.timeUnitSeconds * 1000 },
  });
}

/** The agent of a failed-over machine "in Azure": its disks are the failed-over page blobs. */
export function azureAgentConfig(layout: LabLayout, pki: LabPki, manifest: LabManifest, component: string, machine: string, grpcPort: number, nbdPort: number): string {
  const dataDir = layout.dataDir(component);
  return stringify({
    ...base(layout, pki, component, grpcPort),
    name: machine,
    location: "azure",
    configServer: link(manifest),
    nbd: { host: "127.0.0.1", port: nbdPort, socketPath: join(dataDir, "nbd.sock") },
    retry: { timeUnitMs: manifest.timeUnitSeconds * 1000 },
  });
}
