import type { DiskProof } from "../proto/index.js";
import type { StoredProof } from "./store/index.js";

/** An agent's proofs (of a tag, a stop of writes or a fingerprint command) as the store keeps them. */
export function proofsFromAgent(proofs: readonly DiskProof[], takenAt = new Date()): Array<Omit<StoredProof, "machineId" | "sequence">> {
  return proofs.map((p) => ({
    diskIndex: p.index,
    sizeBytes: p.sizeBytes,
    pageSize: p.pageSize,
    fingerprint: p.fingerprint,
    summary: Buffer.from(p.summary),
    takenAt,
  }));
}
