import { existsSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { stringify } from "yaml";
import { writeFileAtomic } from "../../common/fs/index.js";
import { channelOptions, unaryCall } from "../../common/grpc/index.js";
import { createCertificateRequest } from "../../common/tls/index.js";
import { ComponentRole, ConfigurationServiceClient, type Disk, type RegisterResponse, SiteLocation } from "../../proto/index.js";
import { srlabVersion } from "../../common/version/index.js";
import { discoverCa } from "./ca-discovery.js";
import type { JoinPlan } from "./join-plan.js";

const ROLE: Record<JoinPlan["role"], ComponentRole> = {
  agent: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
  "process-server": ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
  "master-target": ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
};

/** What a successful join left on this host. */
export interface Joined {
  componentId: string;
  machineId: string;
  /** host:port the daemon serves gRPC on (registered with the configuration server). */
  address: string;
  metricsAddress: string;
  nbdPort?: number;
}

export interface JoinPorts {
  grpc: number;
  metrics: number;
  nbd: number;
}

/**
 * The join itself, in an order that leaves nothing half-way: refuse to overwrite an earlier
 * join, pin the CA (nothing sent before it matched), make the key pair here, register with the
 * token and the certificate request over TLS verified against the pinned CA, and only then
 * write the key, certificate, CA and config (with the credential, never the token).
 */
export async function joinHost(plan: JoinPlan, ports: JoinPorts, say: (line: string) => void): Promise<Joined> {
  const { paths } = plan;
  if (existsSync(paths.configFile)) {
    throw new Error(`${paths.configFile} exists: this host already joined as ${plan.name} (start it with srlab ${plan.role} --config ${paths.configFile}, or remove that file to join again)`);
  }
  say(`checking the configuration server at ${plan.configServer.address} against ${plan.caHash}`);
  const caPem = await discoverCa(plan.configServer, plan.caHash);
  say("CA matches the pinned hash; making this host's key pair and certificate request");

  const listenHost = plan.listen.host;
  const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);
  const address = `${bracket(listenHost)}:${ports.grpc}`;
  const metricsAddress = `${bracket(listenHost)}:${ports.metrics}`;
  const names = certificateNames(listenHost);
  const request = await createCertificateRequest({ commonName: plan.name, ...names });

  const disks: Disk[] = plan.disks.map((d, index) => ({
    diskId: `${plan.name}-disk${index}`,
    index,
    sizeBytes: d.sizeBytes,
    imagePath: d.path,
    nbdUri: "",
    nbdUnixUri: "",
    addedAtSequence: 0,
    blobName: "",
  }));
  const client = new ConfigurationServiceClient(plan.configServer.address, grpc.credentials.createSsl(Buffer.from(caPem)), channelOptions(plan.configServer.address));
  let registered: RegisterResponse;
  try {
    registered = await unaryCall(client, client.register, {
      passphrase: "",
      joinToken: plan.token,
      role: ROLE[plan.role],
      name: plan.name,
      address,
      location: SiteLocation.SITE_LOCATION_ON_PREMISES,
      disks,
      version: srlabVersion(),
      certificateRequest: request.csrPem,
      hostName: hostname(),
      metricsAddress,
    });
  } catch (err) {
    const e = err as grpc.ServiceError;
    throw new Error(`the configuration server refused the join: ${e.details ?? e.message}`);
  } finally {
    client.close();
  }
  if (!registered.certificate) throw new Error("the configuration server registered this host but signed no certificate: it is older than this srlab; upgrade it");
  say(`registered ${plan.role} ${plan.name}${registered.machineId ? ` (machine ${registered.machineId})` : ""}; certificate signed by the lab CA`);

  mkdirSync(paths.pkiDir, { recursive: true, mode: 0o700 });
  for (const d of [paths.dataDir, `${paths.dir}/logs`, `${paths.dir}/run`]) mkdirSync(d, { recursive: true });
  mkdirSync(paths.configFile.slice(0, paths.configFile.lastIndexOf("/")), { recursive: true });
  // Key first: a certificate without its key would look like a finished join.
  await writeFileAtomic(paths.keyFile, request.keyPem, { mode: 0o600 });
  await writeFileAtomic(paths.certFile, registered.certificate, { mode: 0o644 });
  await writeFileAtomic(paths.caFile, caPem, { mode: 0o644 });
  await writeFileAtomic(paths.configFile, daemonConfig(plan, registered, ports), { mode: 0o600 });
  return { componentId: registered.componentId, machineId: registered.machineId, address, metricsAddress, nbdPort: plan.role === "agent" ? ports.nbd : undefined };
}

/** The certificate names this host is reached by: --listen, its host name, and loopback for local tools. */
function certificateNames(listenHost: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(["localhost"]);
  const ipAddresses = new Set(["127.0.0.1", "::1"]);
  if (isIP(listenHost)) ipAddresses.add(listenHost);
  else dnsNames.add(listenHost);
  const host = hostname();
  if (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) dnsNames.add(host);
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

/** The daemon's config file: what `srlab up` would write for it, with the credential it just got. */
function daemonConfig(plan: JoinPlan, registered: RegisterResponse, ports: JoinPorts): string {
  const { paths } = plan;
  const base = {
    name: plan.name,
    dataDir: paths.dataDir,
    listen: { host: plan.listen.host, port: ports.grpc },
    // On --listen too: the head node's Prometheus scrapes it from there.
    metrics: { host: plan.listen.host, port: ports.metrics },
    log: { level: "info", format: "json" },
    tls: { caFile: paths.caFile, certFile: paths.certFile, keyFile: paths.keyFile },
    readyFile: paths.readyFile,
    configServer: { address: plan.configServer.address, credential: registered.credential },
  };
  if (plan.role === "agent") {
    return stringify({
      ...base,
      disks: plan.disks.map((d) => ({ path: d.path, sizeBytes: d.sizeBytes })),
      nbd: { host: plan.listen.host, port: ports.nbd },
      retry: { timeUnitMs: Math.round((registered.timeUnitSeconds || 60) * 1000) },
    });
  }
  if (plan.role === "process-server") return stringify({ ...base, location: "on-premises" });
  return stringify(base);
}
