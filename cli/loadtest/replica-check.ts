import { createStorage } from "./storage.js";
import type { AdminClient } from "../admin-client.js";
import { ProgressLine } from "../output.js";
import type { LoadReport } from "./report.js";
import { hashFile, hashReplica } from "./verify.js";
import type { Assignment } from "./drive.js";

/** Waits until every write each machine captured is in storage and applied to its replica. */
export async function drain(client: AdminClient, names: string[], timeoutSeconds: number): Promise<void> {
  const until = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const { machines } = await client.call(client.client.listMachines, {});
    const behind = machines.filter((m) => names.includes(m.name)).filter((m) => {
      const s = m.stats;
      return !s || s.processedSequence < s.capturedSequence || s.uploadedSequence < s.capturedSequence || s.rpoSeconds > 0;
    });
    if (behind.length === 0) return;
    if (Date.now() > until) throw new Error(`replication did not drain within ${timeoutSeconds} s (${behind.map((m) => m.name).join(", ")} behind)`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Hashes every disk of a machine and its replica; a mismatch is re-checked until the drain timeout. */
export async function verifyMachine(client: AdminClient, a: Assignment, processServer: string, timeoutSeconds: number): Promise<LoadReport["machines"][number]> {
  const { machine } = await client.call(client.client.getMachine, { machine: a.machine.name });
  const store = createStorage(client.manifest);
  await store.init();
  // On a terminal the percentage moves in place; in a log, one line per disk.
  const line = new ProgressLine(Boolean(process.stderr.isTTY));
  try {
    const disks: LoadReport["machines"][number]["disks"] = [];
    for (const d of machine!.disks) {
      const until = Date.now() + timeoutSeconds * 1000;
      if (!process.stderr.isTTY) process.stderr.write(`verifying ${a.machine.name} disk ${d.index} (${d.sizeBytes} bytes)\n`);
      const progress = (what: string) => (n: number) => line.update(`verifying ${a.machine.name} disk ${d.index}: ${what} ${((100 * n) / d.sizeBytes).toFixed(0)}%`);
      const source = await hashFile(d.imagePath, d.sizeBytes, progress("source"));
      let replica = await hashReplica(store, machine!.machineId, d.index, d.sizeBytes, progress("replica"));
      while (replica !== source && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 1_000));
        replica = await hashReplica(store, machine!.machineId, d.index, d.sizeBytes, progress("replica"));
      }
      disks.push({ index: d.index, sizeBytes: d.sizeBytes, sourceSha256: source, replicaSha256: replica ?? null, equal: replica === source });
    }
    return { name: a.machine.name, profile: a.profile, processServer, disks, verified: disks.length > 0 && disks.every((d) => d.equal) };
  } finally {
    line.done();
    await store.close();
  }
}
