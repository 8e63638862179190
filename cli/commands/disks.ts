import { parseSize } from "../../common/units/index.js";
import { AdminClient } from "../admin-client.js";
import { report } from "./replication.js";

/** `srlab disk add`: a new disk on a protected machine, with its own initial replication. */
export function diskAdd(dir: string, machine: string, o: { size: string; wait?: boolean; json?: boolean }) {
  const sizeBytes = parseSize(o.size);
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.callDisks(c.disks.addDisk, { machine, sizeBytes });
    await report(c, job!.jobId, o.wait !== false, Boolean(o.json), `disk added to ${machine}`);
  });
}

/** `srlab disk remove`: stop replicating a disk; recovery points that hold it keep it. */
export function diskRemove(dir: string, machine: string, o: { disk: string; wait?: boolean; json?: boolean }) {
  const diskIndex = Number(o.disk);
  if (!Number.isInteger(diskIndex) || diskIndex < 0) throw new Error(`--disk must be a disk index (0, 1, …), got "${o.disk}"`);
  return AdminClient.using(dir, async (c) => {
    const { job } = await c.callDisks(c.disks.removeDisk, { machine, diskIndex });
    await report(c, job!.jobId, o.wait !== false, Boolean(o.json), `disk ${diskIndex} of ${machine} no longer replicated`);
  });
}
