import type Database from "better-sqlite3";
import type { Disk } from "../../proto/index.js";
import { invalid } from "./store-error.js";

/** 'source' disks are the protected ones; 'azure' disks belong to the failed-over machine. */
export type DiskKind = "source" | "azure";

/** The columns of a disk row, named as the Disk message's fields. */
const DISK_COLUMNS = `disk_id AS diskId, disk_index AS "index", size_bytes AS sizeBytes, image_path AS imagePath,
  nbd_uri AS nbdUri, nbd_unix_uri AS nbdUnixUri, added_at_sequence AS addedAtSequence, blob_name AS blobName`;

export class MachineDisks {
  private readonly select;
  private readonly insert;
  private readonly update;
  private readonly remove;

  constructor(db: Database.Database) {
    this.select = db.prepare<[string, string], Disk>(
      `SELECT ${DISK_COLUMNS} FROM disks WHERE machine_id = ? AND kind = ? ORDER BY disk_index`,
    );
    this.insert = db.prepare(
      `INSERT INTO disks (machine_id, kind, disk_id, disk_index, size_bytes, image_path, nbd_uri,
         nbd_unix_uri, added_at_sequence, blob_name)
       VALUES (@machineId, @kind, @diskId, @index, @sizeBytes, @imagePath, @nbdUri, @nbdUnixUri,
         @addedAtSequence, @blobName)`,
    );
    // Index and added_at_sequence are identity: once recorded they never change.
    this.update = db.prepare(
      `UPDATE disks SET size_bytes = @sizeBytes, image_path = @imagePath, nbd_uri = @nbdUri,
         nbd_unix_uri = @nbdUnixUri, blob_name = @blobName
       WHERE machine_id = @machineId AND kind = @kind AND disk_id = @diskId`,
    );
    this.remove = db.prepare<[string, string, string]>(
      "DELETE FROM disks WHERE machine_id = ? AND kind = ? AND disk_id = ?",
    );
  }

  list(machineId: string, kind: DiskKind): Disk[] {
    return this.select.all(machineId, kind);
  }

  /**
   * Reconcile the stored disk set with `disks`. Known disks keep their index and
   * added_at_sequence; a new disk takes its requested index when free (else the next free one)
   * and, when it joins a machine that already had disks, records `nextSequence` unless the
   * reporter supplied its own added_at_sequence. Disks no longer reported are dropped.
   */
  replace(machineId: string, kind: DiskKind, disks: readonly Disk[], nextSequence: number): Disk[] {
    const seen = new Set<string>();
    for (const d of disks) {
      if (d.diskId === "") throw invalid(`machine ${machineId}: every disk needs a disk id`);
      if (seen.has(d.diskId)) throw invalid(`machine ${machineId}: disk "${d.diskId}" is listed twice`);
      if (!Number.isInteger(d.sizeBytes) || d.sizeBytes < 0) {
        throw invalid(`machine ${machineId}: disk "${d.diskId}" has an invalid size ${d.sizeBytes}`);
      }
      seen.add(d.diskId);
    }
    const current = this.list(machineId, kind);
    const hadDisks = current.length > 0;
    const known = new Map(current.map((d) => [d.diskId, d]));
    for (const d of current) {
      if (!seen.has(d.diskId)) this.remove.run(machineId, kind, d.diskId);
    }
    const used = new Set(current.filter((d) => seen.has(d.diskId)).map((d) => d.index));
    const fresh: Disk[] = [];
    for (const d of disks) {
      if (known.has(d.diskId)) this.update.run(rowParams(machineId, kind, d, d.index, d.addedAtSequence));
      else fresh.push(d);
    }
    // Place requested indexes first so a disk without one cannot steal an index another asked for.
    const placed = new Map<Disk, number>();
    for (const d of fresh) {
      if (Number.isInteger(d.index) && d.index >= 0 && !used.has(d.index)) {
        placed.set(d, d.index);
        used.add(d.index);
      }
    }
    for (const d of fresh) {
      if (placed.has(d)) continue;
      let i = 0;
      while (used.has(i)) i++;
      placed.set(d, i);
      used.add(i);
    }
    for (const d of fresh) {
      const addedAt = d.addedAtSequence > 0 ? d.addedAtSequence : hadDisks ? nextSequence : 0;
      this.insert.run(rowParams(machineId, kind, d, placed.get(d)!, addedAt));
    }
    return this.list(machineId, kind);
  }
}

function rowParams(machineId: string, kind: DiskKind, d: Disk, index: number, addedAtSequence: number) {
  return {
    machineId,
    kind,
    diskId: d.diskId,
    index,
    sizeBytes: d.sizeBytes,
    imagePath: d.imagePath,
    nbdUri: d.nbdUri,
    nbdUnixUri: d.nbdUnixUri,
    addedAtSequence,
    blobName: d.blobName ?? "",
  };
}
