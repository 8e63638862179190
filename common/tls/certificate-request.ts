import { isIP } from "node:net";
import { type CertificateUsage, DEFAULT_DNS_NAMES, DEFAULT_IP_ADDRESSES, issueForPublicKey, type LabCa } from "./lab-ca.js";
import { subtle, x509 } from "./x509-provider.js";

/** What a joining component asks to be certified for. */
export interface CertificateRequestOptions {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
}

/** A PKCS#10 request and the private key it was made with (PEM; the key never leaves its host). */
export interface CertificateRequest {
  csrPem: string;
  keyPem: string;
}

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

/** A new P-256 key pair and a PKCS#10 request for it, with the names as subject alternative names. */
export async function createCertificateRequest(options: CertificateRequestOptions): Promise<CertificateRequest> {
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [options.commonName] }, { O: ["srlab"] }],
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension(sanEntries(options.dnsNames ?? DEFAULT_DNS_NAMES, options.ipAddresses ?? DEFAULT_IP_ADDRESSES), false)],
  });
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  return { csrPem: csr.toString("pem"), keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** The names a request asks for, after its signature proved the requester holds the key. */
export interface CheckedRequest {
  request: x509.Pkcs10CertificateRequest;
  dnsNames: string[];
  ipAddresses: string[];
}

const MAX_REQUEST_BYTES = 16 * 1024;
const MAX_NAMES = 32;

/**
 * Parses a PEM PKCS#10 request and checks its self-signature (proof of possession of the key).
 * Anything else — not PEM, not a request, a bad signature, too many names — is one error.
 */
export async function checkCertificateRequest(csrPem: string): Promise<CheckedRequest> {
  if (csrPem.length > MAX_REQUEST_BYTES) throw new Error(`the certificate request is larger than ${MAX_REQUEST_BYTES} bytes`);
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw new Error("the certificate request is not a PEM PKCS#10 request");
  }
  if (!(await request.verify())) throw new Error("the certificate request's signature does not match its public key");
  const raw = request.getExtension("2.5.29.17");
  const san = raw ? new x509.SubjectAlternativeNameExtension(raw.rawData) : undefined;
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const n of san?.names.items ?? []) {
    if (n.type === "dns") dnsNames.push(n.value);
    else if (n.type === "ip") ipAddresses.push(n.value);
    else throw new Error(`the certificate request asks for a ${n.type} name; only DNS names and IP addresses are signed`);
  }
  if (dnsNames.length + ipAddresses.length > MAX_NAMES) throw new Error(`the certificate request names more than ${MAX_NAMES} hosts`);
  for (const d of dnsNames) {
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(d) || d.startsWith("*")) {
      throw new Error(`the certificate request names "${d}", which is not a host name`);
    }
  }
  return { request, dnsNames, ipAddresses };
}

/**
 * Signs a checked request with the lab CA: the subject is the common name the configuration
 * server decides (the registered component's name), the key and host names are the request's.
 */
export async function signCertificateRequest(ca: LabCa, checked: CheckedRequest, options: { commonName: string; usage?: CertificateUsage }): Promise<string> {
  const issued = await issueForPublicKey(ca, await checked.request.publicKey.export(), {
    commonName: options.commonName,
    dnsNames: checked.dnsNames,
    ipAddresses: checked.ipAddresses,
    usage: options.usage ?? "both",
  });
  return issued;
}

function sanEntries(dnsNames: string[], ipAddresses: string[]): x509.JsonGeneralNames {
  const names: x509.JsonGeneralNames = [...new Set(dnsNames)].map((value) => ({ type: "dns", value }));
  for (const ip of new Set(ipAddresses)) {
    if (isIP(ip) === 0) throw new Error(`not an IP address for the certificate: ${ip}`);
    names.push({ type: "ip", value: ip });
  }
  return names;
}
