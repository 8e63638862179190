import type { StoredProof } from "./store/index.js";

/** What an agent's tag or stop-writes result carries per disk (mobility-agent DiskProof). */
interface AgentProof {
  index: number;
  sizeBytes: number;
  pageSize: number;
  fingerprint: string;
  summary: string;
}

/** An agent's proofs (command result JSON) as the store keeps them; malformed entries are dropped. */
export function proofsFromAgent(result: Record<string, unknown>, takenAt = new Date()): Array<Omit<StoredProof, "machineId" | "sequence">> {
  const list = Array.isArray(result.proofs) ? (result.proofs as AgentProof[]) : [];
  return list
    .filter((p) => Number.isInteger(p?.index) && typeof p.fingerprint === "string" && typeof p.summary === "string")
    .map((p) => ({
      diskIndex: p.index,
      sizeBytes: p.sizeBytes,
      pageSize: p.pageSize,
      fingerprint: p.fingerprint,
      summary: Buffer.from(p.summary, "base64"),
      takenAt,
    }));
}
