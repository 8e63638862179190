import type { MachineHandover } from "../proto/index.js";
import type { MachineFacts } from "./machine-registry.js";

/**
 * A drained machine's facts as the next process server needs them (switch-process-server). The
 * direction history stays behind: only a machine replicating to Azure is handed over, and the
 * new process server holds nothing of its earlier epochs.
 */
export function handoverOf(facts: MachineFacts, fromProcessServerId: string): MachineHandover {
  return {
    machineId: facts.machineId,
    disks: facts.disks.map((d) => ({
      index: d.index,
      sizeBytes: d.sizeBytes,
      addedAtSequence: d.addedAtSequence,
      baseSequence: d.baseSequence ?? 0,
      removed: d.removed ?? false,
    })),
    policy: facts.policy,
    uploadedSequence: facts.uploadedSequence,
    fromProcessServerId,
  };
}

/** The facts a process server adopting a machine starts from (its stream continues after uploadedSequence). */
export function factsOf(handover: MachineHandover): MachineFacts {
  return {
    machineId: handover.machineId,
    disks: handover.disks.map((d) => ({
      index: d.index,
      sizeBytes: d.sizeBytes,
      addedAtSequence: d.addedAtSequence,
      baseSequence: d.baseSequence > 0 ? d.baseSequence : undefined,
      removed: d.removed || undefined,
    })),
    policy: handover.policy,
    uploadedSequence: handover.uploadedSequence,
  };
}
