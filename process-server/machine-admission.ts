import { ErrorCode, SrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { pageBlobSizeFor } from "../common/replica/index.js";
import { isUsableMachineId, replicaBlobName } from "../common/storage-layout/index.js";
import type { BlobStore } from "../common/storage/index.js";
import type { ReplicateOpen } from "../proto/index.js";
import type { DiskCache } from "./cache/index.js";
import type { AgentSite } from "./caller-auth.js";
import type { Machine } from "./machine.js";

/** What admitting a machine needs from the process server. */
export interface AdmissionHost {
  /** The server's name, for messages. */
  readonly name: string;
  readonly logger: Logger;
  readonly cache: DiskCache;
  readonly store: BlobStore;
  /** The machine when its pipeline runs already. */
  known(machineId: string): Machine | undefined;
  /** Starts the pipeline of a machine seen for the first time and returns it. */
  start(machineId: string): Promise<Machine>;
}

/**
 * A Replicate stream's `open`: registers the machine (first open) or updates its disks, and makes
 * sure its replica blobs exist. Refuses an agent whose site does not match the machine's direction.
 */
export async function admitMachine(host: AdmissionHost, open: ReplicateOpen, site: AgentSite): Promise<Machine> {
  if (!isUsableMachineId(open.machineId)) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `machine id "${open.machineId}" is not usable (letters, digits, . _ - only)`);
  }
  // Each agent only in its direction: the Azure agent's writes must never reach the replica
  // (the CS sends the assignment to it and to us at once, so it may simply be early), and the
  // on-premises disk belongs to the master target while failing back. Both retry (UNAVAILABLE).
  const failingBack = host.known(open.machineId)?.failingBack ?? false;
  if (site === "azure" && !failingBack) {
    throw new SrlabError(
      ErrorCode.UNAVAILABLE,
      `process server ${host.name} has no failback assignment (Azure to on-premises, with a master target) for machine ${open.machineId} yet`,
    );
  }
  if (site === "on-premises" && failingBack) {
    throw new SrlabError(
      ErrorCode.UNAVAILABLE,
      `machine ${open.machineId} replicates from Azure to on-premises through process server ${host.name}; the on-premises agent may not replicate until the direction is switched back`,
    );
  }
  const seen = new Set<number>();
  for (const d of open.disks) {
    if (seen.has(d.index)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk index ${d.index} is declared twice`);
    seen.add(d.index);
    if (!Number.isSafeInteger(d.sizeBytes) || d.sizeBytes <= 0) {
      throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `disk ${d.index} has size ${d.sizeBytes}; it must be positive`);
    }
  }
  const machine = host.known(open.machineId) ?? (await host.start(open.machineId));
  if (open.disks.length === 0 && machine.diskList().length === 0) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "open declares no disks");
  }
  let changed = machine.diskList().length === 0;
  for (const d of open.disks) {
    const known = machine.disk(d.index);
    if (known) {
      if (known.sizeBytes !== d.sizeBytes) {
        throw new SrlabError(
          ErrorCode.INVALID_REPLICA_STATE,
          `disk ${d.index} of machine ${machine.id} was ${known.sizeBytes} bytes and is now ${d.sizeBytes}; disable and re-enable protection to resize`,
        );
      }
      if (known.removed) {
        // Added again after `srlab disk remove`: it needs a new copy before points cover it.
        machine.setDisk({ ...known, removed: false, baseSequence: undefined });
        changed = true;
      }
      continue;
    }
    // A disk added after protection only exists in points from its first write on.
    const added = machine.diskList().length === 0 ? d.addedAtSequence : Math.max(d.addedAtSequence, host.cache.lastSequence(machine.id) + 1);
    machine.setDisk({ index: d.index, sizeBytes: d.sizeBytes, addedAtSequence: added });
    changed = true;
    // Failback has no replica page blob (the master target holds the disk).
    if (!machine.failingBack) await createReplicaBlob(host, machine, d.index, d.sizeBytes);
  }
  // A disk the agent no longer declares was removed (`srlab disk remove`): new points leave it
  // out; its replica blob stays, the snapshots of older points live on it.
  const declared = new Set(open.disks.map((d) => d.index));
  for (const d of machine.diskList()) {
    if (declared.size === 0 || declared.has(d.index) || d.removed) continue;
    machine.setDisk({ ...d, removed: true });
    changed = true;
    host.logger.info("disk no longer replicated", { machineId: machine.id, disk: d.index });
  }
  if (changed) await machine.save();
  return machine;
}

/** Best effort: when storage is down the applier creates the blob before its first write. */
async function createReplicaBlob(host: AdmissionHost, machine: Machine, index: number, sizeBytes: number): Promise<void> {
  try {
    await host.store.createPageBlob(replicaBlobName(machine.id, index), pageBlobSizeFor(sizeBytes));
  } catch (err) {
    if ((err as { recoverable?: boolean }).recoverable) {
      host.logger.warn("replica blob not created yet (storage unavailable)", { machineId: machine.id, disk: index });
      return;
    }
    throw new SrlabError(ErrorCode.INVALID_REPLICA_STATE, `replica disk ${index} of machine ${machine.id}: ${(err as Error).message}`, { cause: err });
  }
}
