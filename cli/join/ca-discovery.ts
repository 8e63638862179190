import { X509Certificate } from "node:crypto";
import { connect, type PeerCertificate } from "node:tls";
import { caHash } from "../../common/credentials/index.js";

const CA_HASH = /^sha256:[0-9a-f]{64}$/;

/** `--ca-hash` as given by `srlab token create`: `sha256:` and 64 hex digits (case ignored). */
export function parseCaHash(value: string): string {
  const v = value.trim().toLowerCase();
  if (!CA_HASH.test(v)) throw new Error(`--ca-hash must be sha256: followed by 64 hex digits (as srlab token create prints it), got "${value}"`);
  return v;
}

/** `HOST:PORT` (an IPv6 host in brackets). */
export function parseHostPort(flag: string, value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`${flag} must be HOST:PORT (e.g. 192.0.2.10:7443), got "${value}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** Whether a certificate's public key is the pinned one. */
export function matchesCaHash(pem: string, pin: string): boolean {
  return caHash(pem) === pin;
}

/**
 * kubeadm's discovery: reads the certificates the configuration server presents in a TLS
 * handshake (its leaf and the lab CA; common/grpc/server.ts sends both), without trusting them,
 * and returns the CA certificate whose public key hash is the pinned one. Only a handshake
 * happens — no request, no token — so a wrong server learns nothing. The caller then talks to
 * the server with TLS verified against this CA: an impostor that replays the real CA still cannot
 * prove it holds a certificate the CA signed.
 */
export async function discoverCa(address: { host: string; port: number }, pin: string, timeoutMs = 10_000): Promise<string> {
  const presented = await presentedCertificates(address, timeoutMs);
  const ca = presented.find((pem) => new X509Certificate(pem).ca && matchesCaHash(pem, pin));
  if (ca) return ca;
  // The presented hash is not shown: a pin is only worth something if it comes from the head node.
  throw new Error(
    `the configuration server at ${address.host}:${address.port} does not present the CA ${pin}: nothing was sent, nothing registered (check --ca-hash and --config-server against srlab token create on the head node)`,
  );
}

/** Every certificate of the server's handshake chain, as PEM, leaf first. */
function presentedCertificates(address: { host: string; port: number }, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: address.host,
      port: address.port,
      // Nothing is trusted yet: the chain is judged by the pinned hash alone.
      rejectUnauthorized: false,
      ALPNProtocols: ["h2"],
      // SNI cannot carry an IP address; the name does not matter for reading the chain.
      servername: /^[\d.]+$|:/.test(address.host) ? undefined : address.host,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS handshake with the configuration server at ${address.host}:${address.port} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const chain: string[] = [];
      const seen = new Set<string>();
      let cert: PeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert?.raw && !seen.has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        chain.push(toPem(cert.raw));
        cert = (cert as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
      }
      socket.end();
      resolve(chain);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the configuration server at ${address.host}:${address.port}: ${err.message}`));
    });
  });
}

function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
