import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ReplicationPolicy } from "../proto/index.js";
import type { DirectionEpoch } from "./direction-epochs.js";
import { readJson, writeJsonAtomic } from "../common/fs/index.js";

export interface ReplicaDisk {
  index: number;
  sizeBytes: number;
  /** First sequence that can touch this disk (a disk added after protection). */
  addedAtSequence: number;
  /**
   * Sequence of the BASE record that completed this disk's first copy: points from here on cover
   * it. Absent while its initial replication runs.
   */
  baseSequence?: number;
  /** No longer replicated (`srlab disk remove`): new points leave it out, older ones keep it. */
  removed?: boolean;
}

/** What the process server must remember about a machine across restarts. */
export interface MachineFacts {
  machineId: string;
  disks: ReplicaDisk[];
  /** From the configuration server's MachineAssignment; drives recovery points and retention. */
  policy?: ReplicationPolicy;
  /** Highest sequence in storage; the cache still holds everything after it. */
  uploadedSequence: number;
  /** Direction history (failback); absent means on-premises to Azure from the start. */
  epochs?: DirectionEpoch[];
}

interface StoredFacts extends Omit<MachineFacts, "policy"> {
  policy?: unknown;
}

/**
 * One small JSON file per machine under `<dataDir>/machines`. Local (not in storage) because the
 * uploaded position must be durable before the cache releases records, even while storage is down.
 */
export class MachineRegistry {
  constructor(private readonly dir: string) {}

  async loadAll(): Promise<MachineFacts[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: MachineFacts[] = [];
    for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
      const stored = await readJson<StoredFacts>(join(this.dir, name));
      if (!stored) continue;
      out.push({ ...stored, policy: stored.policy === undefined ? undefined : ReplicationPolicy.fromJSON(stored.policy) });
    }
    return out;
  }

  /** Forgets a machine (released to another process server, or unprotected). */
  async remove(machineId: string): Promise<void> {
    await rm(join(this.dir, `${machineId}.json`), { force: true });
  }

  async save(facts: MachineFacts): Promise<void> {
    const stored: StoredFacts = { ...facts, policy: facts.policy ? ReplicationPolicy.toJSON(facts.policy) : undefined };
    await writeJsonAtomic(join(this.dir, `${facts.machineId}.json`), stored);
  }
}
