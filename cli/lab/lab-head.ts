import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { azuriteConnectionString } from "../../common/azurite/index.js";
import { writeFileAtomic } from "../../common/fs/index.js";
import type { LabComponent, LabLayout, LabManifest } from "./lab-layout.js";

/** `srlab up --listen/--advertise` as given (undefined: keep what the lab has). */
export interface HeadNetwork {
  listen?: string;
  advertise?: string[];
}

export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** Checks `--listen ADDR` and `--advertise NAME[,NAME…]` before anything starts. */
export function parseHeadNetwork(listen: string | undefined, advertise: string | undefined): HeadNetwork {
  const hostName = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
  if (listen !== undefined && isIP(listen) === 0 && !hostName.test(listen)) {
    throw new Error(`--listen must be an address (e.g. 0.0.0.0 or 192.0.2.10) or a host name, got "${listen}"`);
  }
  let names: string[] | undefined;
  if (advertise !== undefined) {
    names = advertise.split(",").map((n) => n.trim()).filter(Boolean);
    if (names.length === 0) throw new Error("--advertise needs at least one host name or address");
    for (const n of names) {
      if (isIP(n) === 0 && !hostName.test(n)) throw new Error(`--advertise: "${n}" is neither an IP address nor a host name`);
      if (isWildcard(n)) throw new Error(`--advertise: ${n} is a wildcard; give names or addresses other hosts reach this one at`);
    }
  }
  return { listen, advertise: names };
}

/** Where the head's configuration server and process servers bind. */
export function bindHost(manifest: LabManifest): string {
  return manifest.listen ?? "127.0.0.1";
}

/** The address the lab's own tools (CLI, local daemons) dial for a daemon bound on the head's listen address. */
export function localHost(manifest: LabManifest): string {
  const l = bindHost(manifest);
  return isWildcard(l) ? "127.0.0.1" : l;
}

/** Where other hosts reach the head: the first --advertise name, else a specific --listen address. */
function advertisedHost(manifest: LabManifest): string | undefined {
  return manifest.advertise?.[0] ?? (manifest.listen && !isWildcard(manifest.listen) ? manifest.listen : undefined);
}

const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);

/** Where hosts that join reach the configuration server (`srlab token create` hands it out). */
export function joinAddress(manifest: LabManifest): string {
  const port = manifest.configServerAddress.slice(manifest.configServerAddress.lastIndexOf(":") + 1);
  const host = advertisedHost(manifest);
  return host ? `${bracket(host)}:${port}` : manifest.configServerAddress;
}

/** The `srlab join` command line `srlab token create` prints for a token. */
export function joinCommand(role: string, configServer: string, token: string, caHash: string): string {
  return `srlab join ${role} --config-server ${configServer} --token ${token} --ca-hash ${caHash}`;
}

/** Extra certificate names for the head's daemons: what they are advertised as and listen on. */
export function headCertificateNames(manifest: LabManifest): { dnsNames: string[]; ipAddresses: string[] } {
  const names = [...(manifest.advertise ?? []), ...(manifest.listen && !isWildcard(manifest.listen) ? [manifest.listen] : [])];
  return { dnsNames: names.filter((n) => isIP(n) === 0), ipAddresses: names.filter((n) => isIP(n) !== 0) };
}

/** The address a lab component is dialled at from this host (health probes). */
export function dialAddress(manifest: LabManifest, c: LabComponent): string {
  const host = c.role === "config-server" || c.role === "process-server" ? localHost(manifest) : "127.0.0.1";
  return `${bracket(host)}:${c.grpcPort}`;
}

/**
 * Records --listen/--advertise in lab.json (a resumed `up` keeps them) and brings the configs in
 * line: the configuration server and the process servers bind (gRPC and /metrics) on the listen
 * address; process servers register their advertised address; every daemon dials the
 * configuration server where it listens; Azurite, which joined process servers write to, listens
 * there too. The configuration server gets the lab CA's key to sign joiners' certificates.
 */
export async function applyHeadNetwork(layout: LabLayout, manifest: LabManifest, network: HeadNetwork): Promise<void> {
  if (network.listen !== undefined) manifest.listen = network.listen === "127.0.0.1" ? undefined : network.listen;
  if (network.advertise !== undefined) manifest.advertise = network.advertise;
  const bind = bindHost(manifest);
  const csPort = manifest.configServerAddress.slice(manifest.configServerAddress.lastIndexOf(":") + 1);
  manifest.configServerAddress = `${bracket(localHost(manifest))}:${csPort}`;
  const advertised = advertisedHost(manifest);
  if (manifest.storage.azuritePort) {
    manifest.storage.connectionString = azuriteConnectionString(manifest.storage.azuritePort, bracket(advertised ?? localHost(manifest)));
  }
  for (const c of manifest.components) {
    if (!c.configFile || !existsSync(c.configFile)) continue;
    const before = readFileSync(c.configFile, "utf8");
    const doc = parseDocument(before);
    // A config that does not parse is left for its daemon to refuse with the reason.
    if (doc.errors.length > 0) continue;
    if (c.role === "config-server" || c.role === "process-server") {
      doc.setIn(["listen", "host"], bind);
      doc.setIn(["metrics", "host"], bind);
    }
    if (c.role === "process-server") {
      if (advertised || isWildcard(bind)) doc.setIn(["advertisedAddress"], `${bracket(advertised ?? localHost(manifest))}:${c.grpcPort}`);
      else doc.deleteIn(["advertisedAddress"]);
    }
    if (c.role === "config-server") {
      if (!doc.get("caKeyFile")) doc.set("caKeyFile", join(layout.pkiDir, "ca-key.pem"));
      if (manifest.storage.azuritePort) doc.setIn(["storage", "connectionString"], manifest.storage.connectionString);
    } else if (doc.hasIn(["configServer", "address"])) {
      doc.setIn(["configServer", "address"], manifest.configServerAddress);
    }
    const after = doc.toString();
    // Configs hold credentials: owner-only, replaced atomically.
    if (after !== before) await writeFileAtomic(c.configFile, after, { mode: 0o600 });
  }
}

/** Where Azurite binds: on the head's listen address, so joined process servers reach it. */
export function azuriteHost(manifest: LabManifest): string {
  return bindHost(manifest);
}
