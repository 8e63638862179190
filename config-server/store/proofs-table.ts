import type Database from "better-sqlite3";
import { invalid } from "./store-error.js";

/** A source disk's fingerprint at one sequence (docs/fingerprint.md). */
export interface StoredProof {
  machineId: string;
  sequence: number;
  diskIndex: number;
  sizeBytes: number;
  pageSize: number;
  fingerprint: string;
  /** Serialized tree summary (common/blockhash): names the ranges of a mismatch. */
  summary: Buffer;
  takenAt: Date;
}

interface ProofRow {
  machine_id: string;
  sequence: number;
  disk_index: number;
  size_bytes: number;
  page_size: number;
  fingerprint: string;
  summary: Buffer;
  taken_at: number;
}

const fromRow = (r: ProofRow): StoredProof => ({
  machineId: r.machine_id,
  sequence: r.sequence,
  diskIndex: r.disk_index,
  sizeBytes: r.size_bytes,
  pageSize: r.page_size,
  fingerprint: r.fingerprint,
  summary: r.summary,
  takenAt: new Date(r.taken_at),
});

/** Proofs are facts about the source at a sequence, so they are keyed by (machine, sequence, disk). */
export class ProofsTable {
  private readonly upsert;
  private readonly atSequence;
  private readonly ofMachine;

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      `INSERT INTO disk_proofs (machine_id, sequence, disk_index, size_bytes, page_size, fingerprint, summary, taken_at)
       VALUES (@machineId, @sequence, @diskIndex, @sizeBytes, @pageSize, @fingerprint, @summary, @takenAt)
       ON CONFLICT (machine_id, sequence, disk_index) DO UPDATE SET
         size_bytes = excluded.size_bytes, page_size = excluded.page_size,
         fingerprint = excluded.fingerprint, summary = excluded.summary, taken_at = excluded.taken_at`,
    );
    this.atSequence = db.prepare<[string, number], ProofRow>(
      "SELECT * FROM disk_proofs WHERE machine_id = ? AND sequence = ? ORDER BY disk_index",
    );
    this.ofMachine = db.prepare<[string], ProofRow>("SELECT * FROM disk_proofs WHERE machine_id = ? ORDER BY sequence, disk_index");
  }

  add(p: StoredProof): void {
    if (!/^[0-9a-f]{64}$/.test(p.fingerprint)) throw invalid(`fingerprint of disk ${p.diskIndex} is not 64 hex digits`);
    if (!Number.isSafeInteger(p.sequence) || p.sequence < 0) throw invalid("proof sequence must be a non-negative integer");
    this.upsert.run({
      machineId: p.machineId,
      sequence: p.sequence,
      diskIndex: p.diskIndex,
      sizeBytes: p.sizeBytes,
      pageSize: p.pageSize,
      fingerprint: p.fingerprint,
      summary: p.summary,
      takenAt: p.takenAt.getTime(),
    });
  }

  at(machineId: string, sequence: number): StoredProof[] {
    return this.atSequence.all(machineId, sequence).map(fromRow);
  }

  sequences(machineId: string): number[] {
    return [...new Set(this.ofMachine.all(machineId).map((r) => r.sequence))];
  }
}
