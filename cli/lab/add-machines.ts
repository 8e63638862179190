import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ensureLabPki } from "../../common/tls/index.js";
import { PortAllocator } from "./free-port.js";
import { agentConfig } from "./lab-configs.js";
import type { LabLayout, LabManifest } from "./lab-layout.js";

/** The lab's on-premises machines (agents), not the agents of failed-over machines in Azure. */
export function labMachines(manifest: LabManifest): string[] {
  return manifest.components.filter((c) => c.role === "agent" && !c.name.endsWith("-azure")).map((c) => c.name);
}

/**
 * Grows an existing lab to `wanted` machines (never shrinks it): new agents get the next free
 * `machine-N` names, ports, certificates and configs, with the disk layout of the lab's first
 * machine unless the caller says otherwise. They start with the rest of the lab.
 */
export async function addMachines(
  layout: LabLayout,
  manifest: LabManifest,
  wanted: number,
  disks: { sizeBytes?: number; perMachine?: number },
): Promise<string[]> {
  const existing = labMachines(manifest);
  if (existing.length >= wanted) return [];
  const template = firstMachineDisks(manifest);
  const sizeBytes = disks.sizeBytes ?? template?.sizeBytes ?? 1024 ** 3;
  const perMachine = disks.perMachine ?? template?.count ?? 1;
  const taken = new Set(manifest.components.map((c) => c.name));
  const names: string[] = [];
  for (let i = 1; names.length < wanted - existing.length; i++) if (!taken.has(`machine-${i}`)) names.push(`machine-${i}`);
  const ports = new PortAllocator();
  try {
    const pki = await ensureLabPki(layout.pkiDir, [...manifest.components.filter((c) => c.role !== "azurite").map((c) => c.name), ...names]);
    for (const name of names) {
      const [grpcPort, nbdPort] = [await ports.next(), await ports.next()];
      const configFile = join(layout.configDir, `${name}.yaml`);
      writeFileSync(configFile, agentConfig(layout, pki, manifest, name, grpcPort, nbdPort, sizeBytes, perMachine));
      manifest.components.push({ name, role: "agent", configFile, logFile: join(layout.logDir, `${name}.log`), readyFile: join(layout.runDir, `${name}.ready.json`), grpcPort, pid: 0 });
    }
  } finally {
    await ports.release();
  }
  layout.write(manifest);
  return names;
}

function firstMachineDisks(manifest: LabManifest): { sizeBytes: number; count: number } | undefined {
  const first = manifest.components.find((c) => c.role === "agent" && !c.name.endsWith("-azure") && c.configFile);
  if (!first) return undefined;
  try {
    const doc = parseYaml(readFileSync(first.configFile!, "utf8")) as { disks?: Array<{ sizeBytes?: number }> };
    const d = doc.disks ?? [];
    return d.length && d[0]!.sizeBytes ? { sizeBytes: Number(d[0]!.sizeBytes), count: d.length } : undefined;
  } catch {
    return undefined;
  }
}
