import type { LabManifest } from "./lab-layout.js";

/**
 * Where hosts that join reach the configuration server: the first --advertise name, else the
 * --listen address when it is a specific one, else the address the lab's own tools use.
 */
export function joinAddress(manifest: LabManifest): string {
  const port = manifest.configServerAddress.slice(manifest.configServerAddress.lastIndexOf(":") + 1);
  const host = manifest.advertise?.[0] ?? (manifest.listen && !isWildcard(manifest.listen) ? manifest.listen : undefined);
  if (!host) return manifest.configServerAddress;
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The `srlab join` command line `srlab token create` prints for a token. */
export function joinCommand(role: string, configServer: string, token: string, caHash: string): string {
  return `srlab join ${role} --config-server ${configServer} --token ${token} --ca-hash ${caHash}`;
}

export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}
