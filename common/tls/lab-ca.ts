import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { subtle, x509 } from "./x509-provider.js";

/** A certificate and its private key, both PEM (the key as unencrypted PKCS#8). */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** The lab certificate authority: a self-signed root that signs every component's certificate. */
export type LabCa = PemPair;

export interface LabCaOptions {
  commonName: string;
}

export type CertificateUsage = "server" | "client" | "both";

export interface IssueOptions {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  usage?: CertificateUsage;
}

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const LAB_VALIDITY_YEARS = 10;
// Lab machines' clocks drift; back-date so a freshly issued cert is valid on a slightly slow peer.
const BACKDATE_MS = 60 * 60 * 1000;

export const DEFAULT_DNS_NAMES = ["localhost"];
export const DEFAULT_IP_ADDRESSES = ["127.0.0.1", "::1"];

/** Creates a self-signed ECDSA P-256 root CA valid for ten years. */
export async function createLabCa(options: LabCaOptions): Promise<LabCa> {
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validityWindow();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(options.commonName),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Issues a leaf certificate signed by `ca` for a daemon (server), a caller (client) or both. */
export async function issueCertificate(ca: LabCa, options: IssueOptions): Promise<PemPair> {
  const keys = await generateKeyPair();
  const certPem = await issueForPublicKey(ca, keys.publicKey, options);
  return { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * Signs a leaf certificate (PEM) for a public key made elsewhere: a joiner's certificate request,
 * whose private key never reaches the CA (certificate-request.ts).
 */
export async function issueForPublicKey(ca: LabCa, publicKey: CryptoKey, options: IssueOptions): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const usage = options.usage ?? "both";
  const { notBefore, notAfter } = validityWindow();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectName(options.commonName),
    // Reuse the CA's encoded name so issuer/subject match byte for byte during chain building.
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // ECDHE key exchange only needs digitalSignature for an ECDSA leaf.
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(extendedUsages(usage), false),
      new x509.SubjectAlternativeNameExtension(
        altNames(options.dnsNames ?? DEFAULT_DNS_NAMES, options.ipAddresses ?? DEFAULT_IP_ADDRESSES),
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return cert.toString("pem");
}

function extendedUsages(usage: CertificateUsage): x509.ExtendedKeyUsage[] {
  switch (usage) {
    case "server":
      return [x509.ExtendedKeyUsage.serverAuth];
    case "client":
      return [x509.ExtendedKeyUsage.clientAuth];
    case "both":
      return [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  }
}

function altNames(dnsNames: string[], ipAddresses: string[]): x509.JsonGeneralNames {
  const names: x509.JsonGeneralNames = dnsNames.map((value) => ({ type: "dns", value }));
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new Error(`not an IP address for the certificate: ${ip}`);
    names.push({ type: "ip", value: ip });
  }
  return names;
}

function subjectName(commonName: string): x509.JsonName {
  // Structured form, so a common name containing commas or '=' needs no escaping.
  return [{ CN: [commonName] }, { O: ["srlab"] }];
}

function validityWindow(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + LAB_VALIDITY_YEARS);
  return { notBefore: new Date(now - BACKDATE_MS), notAfter };
}

function randomSerial(): string {
  // 128 random bits with the top bit cleared: DER INTEGERs are signed and serials must be positive.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString("hex");
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pem);
  return subtle.importKey("pkcs8", der, KEY_ALGORITHM, false, ["sign"]);
}
