import type { CredentialVerifier } from "../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import type { BlobStore } from "../common/storage/index.js";
import type { Health } from "../proto/index.js";
import type { DiskCache } from "./cache/index.js";
import type { MachinePipelines } from "./machine-pipelines.js";
import { type Machine, worstHealth } from "./machine.js";
import type { ProcessServerMetrics } from "./metrics.js";
import type { ProcessServiceHost } from "./process-service.js";

/** The parts of the process server its gRPC handlers reach; the getters are read per call. */
export interface ServiceParts {
  /** The server's name, for messages. */
  readonly name: string;
  readonly logger: Logger;
  readonly metrics: ProcessServerMetrics;
  readonly inboxMessages: number;
  readonly pipelines: MachinePipelines;
  /** Undefined until the cache is open. */
  readonly cache: DiskCache | undefined;
  readonly store: BlobStore | undefined;
  /** True once registration, storage and resumed machines are in place. */
  readonly accepting: boolean;
  readonly verifier: CredentialVerifier;
  componentId(): string;
  cacheHealth(): Health;
}

/** What the ProcessService handlers and the Replicate stream use of the server. */
export function serviceHost(parts: ServiceParts): ProcessServiceHost {
  const { pipelines } = parts;
  return {
    logger: parts.logger,
    metrics: parts.metrics,
    inboxMessages: parts.inboxMessages,
    get cache(): DiskCache {
      const cache = parts.cache;
      if (!cache) throw new SrlabError(ErrorCode.UNAVAILABLE, "process server is starting");
      return cache;
    },
    verifier: (): CredentialVerifier => {
      // Streams are refused until registration, storage and resumed machines are in place.
      if (!parts.accepting || !parts.verifier.ready) throw new SrlabError(ErrorCode.UNAVAILABLE, "process server is still registering with the configuration server");
      return parts.verifier;
    },
    componentId: () => parts.componentId(),
    openMachine: (open, site) => pipelines.admit(open, site),
    appended: (machine, records, bytes) => pipelines.appended(machine, records, bytes),
    cacheHealth: () => parts.cacheHealth(),
    store: (): BlobStore => parts.store!,
    machine: (machineId: string): Machine => {
      const p = pipelines.get(machineId);
      if (!p) throw new SrlabError(ErrorCode.MACHINE_NOT_FOUND, `process server ${parts.name} does not replicate machine ${machineId}`);
      return p.machine;
    },
    drain: (machine, apply, signal) => pipelines.drain(machine, apply, signal),
    masterTarget: (machine) => pipelines.get(machine.id)?.masterTarget(),
    stats: (machine) => pipelines.stats(machine),
    status: (machine) => {
      const issues = machine.currentIssues();
      return { health: worstHealth(issues), issues };
    },
  };
}
