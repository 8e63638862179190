import { hashDisk, hashImageFile } from "../../common/blockhash/index.js";
import { replicaBlobName } from "../../common/storage-layout/index.js";
import { LabLayout } from "../../cli/lab/index.js";
import { srlab } from "./cli.js";
import { openLabStore } from "./lab-storage.js";
import { isCaughtUp, type ReplicationView } from "./replication.js";

interface MachineDoc extends ReplicationView {
  name: string;
  machineId: string;
  state: string;
  direction: string;
  resyncRequired: boolean;
  disks: Array<{ index: number; path: string; sizeBytes: number }>;
}

export interface ConvergenceCheck {
  machine: string;
  disk: number;
  source: string;
  replica: string;
}

/**
 * The end-to-end invariant every e2e test checks in its teardown: whenever `srlab status` says a
 * machine replicating to Azure is caught up, each replica disk's fingerprint equals its source
 * image's. Status is read again after hashing, so a machine that moved on meanwhile is not judged.
 * Returns what was compared; throws naming the machine and disk when a pair differs.
 */
export async function checkCaughtUpReplicas(dir: string): Promise<ConvergenceCheck[]> {
  const layout = new LabLayout(dir);
  if (!layout.exists()) return [];
  const status = await srlab(["status", "--dir", dir, "--json"], 60_000);
  if (status.code !== 0) return []; // the lab is not running: nothing claims to be caught up
  const machines = (JSON.parse(status.stdout) as { machines: MachineDoc[] }).machines.filter(
    (m) => m.state === "protected" && m.direction === "on-premises-to-azure" && !m.resyncRequired && isCaughtUp(m),
  );
  if (machines.length === 0) return [];
  const store = await openLabStore(dir);
  const checks: ConvergenceCheck[] = [];
  try {
    for (const m of machines) {
      for (const d of m.disks) {
        const blob = replicaBlobName(m.machineId, d.index);
        const size = (await store.pageBlobSize(blob)) ?? 0;
        const replica = (await hashDisk(size, (offset, length) => store.readPages(blob, offset, length))).fingerprint();
        const source = (await hashImageFile(d.path, { sizeBytes: d.sizeBytes })).fingerprint();
        checks.push({ machine: m.name, disk: d.index, source, replica });
      }
    }
  } finally {
    await store.close();
  }
  // Judge only machines still caught up at the same sequence: a write in between explains a difference.
  const again = await srlab(["status", "--dir", dir, "--json"], 60_000);
  const still = new Map(
    again.code === 0 ? (JSON.parse(again.stdout) as { machines: MachineDoc[] }).machines.map((m) => [m.name, m] as const) : [],
  );
  const judged = checks.filter((c) => {
    const before = machines.find((m) => m.name === c.machine)!;
    const after = still.get(c.machine);
    return after && isCaughtUp(after) && after.capturedSequence === before.capturedSequence;
  });
  const wrong = judged.filter((c) => c.source !== c.replica);
  if (wrong.length) {
    throw new Error(
      `status says caught up but the replica differs from the source: ${wrong.map((c) => `${c.machine} disk ${c.disk} (source ${c.source.slice(0, 12)}…, replica ${c.replica.slice(0, 12)}…)`).join("; ")}`,
    );
  }
  return judged;
}
