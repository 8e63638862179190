import { hkdfSync } from "node:crypto";

// Fixed salt: domain-separates segment keys from anything else derived from the same secret.
const SALT = Buffer.from("srlab/segment-key/v1", "utf8");

/** The AES-256 key for keyId, derived from the deployment secret (HKDF-SHA256, info = keyId). */
export function deriveSegmentKey(deploymentSecret: string | Buffer, keyId: string): Buffer {
  const ikm = typeof deploymentSecret === "string" ? Buffer.from(deploymentSecret, "utf8") : deploymentSecret;
  if (ikm.length === 0) throw new RangeError("deployment secret must not be empty");
  if (keyId.length === 0) throw new RangeError("keyId must not be empty");
  return Buffer.from(hkdfSync("sha256", ikm, SALT, Buffer.from(keyId, "utf8"), 32));
}
