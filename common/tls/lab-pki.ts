import { X509Certificate } from "node:crypto";
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../fs/index.js";
import { type CertificateUsage, createLabCa, issueCertificate, type LabCa } from "./lab-ca.js";
import { x509 } from "./x509-provider.js";

export interface ComponentCertFiles {
  certFile: string;
  keyFile: string;
}

export interface LabPki {
  caFile: string;
  ca: LabCa;
  components: Record<string, ComponentCertFiles>;
}

export interface EnsureLabPkiOptions {
  /** Common name of a newly created CA. */
  caCommonName?: string;
  /** Extra SAN entries for component certs (e.g. a lab machine's hostname or address). */
  dnsNames?: string[];
  ipAddresses?: string[];
  usage?: CertificateUsage;
}

const COMPONENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Makes sure `dir` holds the lab CA and one certificate per component, creating what is missing.
 * Existing files are reused so that a second `srlab up` resumes the same lab; a component cert that
 * the current CA did not sign (the CA was replaced) is re-issued.
 */
export async function ensureLabPki(
  dir: string,
  componentNames: string[],
  options: EnsureLabPkiOptions = {},
): Promise<LabPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caFile = join(dir, "ca.pem");
  const caKeyFile = join(dir, "ca-key.pem");
  const ca = await loadOrCreateCa(caFile, caKeyFile, options.caCommonName ?? "srlab lab CA");
  const caCert = new x509.X509Certificate(ca.certPem);

  const components: Record<string, ComponentCertFiles> = {};
  for (const name of componentNames) {
    if (!COMPONENT_NAME.test(name)) throw new Error(`invalid component name for a certificate file: ${JSON.stringify(name)}`);
    const files = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}-key.pem`) };
    const dnsNames = unique(["localhost", ...(options.dnsNames ?? [])]);
    const ipAddresses = unique(["127.0.0.1", "::1", ...(options.ipAddresses ?? [])]);
    // Re-issued too when the names changed (srlab up --advertise on a resumed lab).
    if (!(await isIssuedBy(files, caCert)) || !(await coversNames(files.certFile, dnsNames, ipAddresses))) {
      const issued = await issueCertificate(ca, {
        commonName: name,
        dnsNames,
        ipAddresses,
        usage: options.usage ?? "both",
      });
      // Key first: a cert file without its key would look reusable on the next run.
      await writeFileAtomic(files.keyFile, issued.keyPem, { mode: 0o600 });
      await writeFileAtomic(files.certFile, issued.certPem, { mode: 0o644 });
    }
    components[name] = files;
  }
  return { caFile, ca, components };
}

async function loadOrCreateCa(caFile: string, caKeyFile: string, commonName: string): Promise<LabCa> {
  const [haveCert, haveKey] = await Promise.all([exists(caFile), exists(caKeyFile)]);
  if (haveCert && haveKey) {
    return { certPem: await readFile(caFile, "utf8"), keyPem: await readFile(caKeyFile, "utf8") };
  }
  if (haveCert !== haveKey) {
    // Silently replacing half a CA would orphan every certificate it issued; let a person decide.
    throw new Error(`incomplete lab CA in ${caFile} / ${caKeyFile}: remove both to create a new CA`);
  }
  const ca = await createLabCa({ commonName });
  await writeFileAtomic(caKeyFile, ca.keyPem, { mode: 0o600 });
  await writeFileAtomic(caFile, ca.certPem, { mode: 0o644 });
  return ca;
}

async function isIssuedBy(files: ComponentCertFiles, caCert: x509.X509Certificate): Promise<boolean> {
  if (!(await exists(files.certFile)) || !(await exists(files.keyFile))) return false;
  try {
    const cert = new x509.X509Certificate(await readFile(files.certFile, "utf8"));
    return await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Whether the certificate's subject alternative names include every one asked for. */
async function coversNames(certFile: string, dnsNames: string[], ipAddresses: string[]): Promise<boolean> {
  try {
    const san = new X509Certificate(await readFile(certFile)).subjectAltName ?? "";
    const have = new Set(san.split(", "));
    return dnsNames.every((d) => have.has(`DNS:${d}`)) && ipAddresses.every((ip) => have.has(`IP Address:${nodeIpForm(ip)}`));
  } catch {
    return false;
  }
}

/** An address as Node prints it in subjectAltName: IPv6 as eight groups, upper case, no leading zeros. */
function nodeIpForm(ip: string): string {
  if (!ip.includes(":")) return ip;
  const [head = "", tail] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((g) => Number.parseInt(g, 16).toString(16).toUpperCase()).join(":");
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
