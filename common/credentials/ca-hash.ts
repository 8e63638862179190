import { createHash, X509Certificate } from "node:crypto";

/**
 * `sha256:HEX` of the CA certificate's public key (SubjectPublicKeyInfo, DER), the value a
 * joiner pins before it sends a secret (kubeadm's discovery-token-ca-cert-hash).
 */
export function caHash(caPem: string | Buffer): string {
  const spki = new X509Certificate(caPem).publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}
