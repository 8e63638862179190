import { type MachineAssignment, ReplicationDirection } from "../proto/index.js";

/** Where one run of a machine's sequence goes: the replica page blobs, or a master target (failback). */
export interface DirectionEpoch {
  /** The epoch holds the sequences after this one (up to the next epoch's startsAfter). */
  startsAfter: number;
  direction: "to-azure" | "to-on-premises";
  masterTargetId: string;
  masterTargetAddress: string;
  /**
   * The master target numbers its stream on its own (it starts at 0 when prepared): its sequence
   * is ours minus this offset. Fixed at the first ApplyWrites open of the epoch, so it is known
   * before any record travels.
   */
  targetOffset?: number;
}

/** The route an assignment asks for; reverse only with a master target to apply to. */
export function routeOf(a: Pick<MachineAssignment, "direction" | "masterTargetId" | "masterTargetAddress">): Omit<DirectionEpoch, "startsAfter"> {
  const reverse = a.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && a.masterTargetAddress !== "";
  return reverse
    ? { direction: "to-on-premises", masterTargetId: a.masterTargetId, masterTargetAddress: a.masterTargetAddress }
    : { direction: "to-azure", masterTargetId: "", masterTargetAddress: "" };
}

/**
 * A machine's direction history as sequence ranges. The switch point is the last sequence held
 * when the assignment arrived, so every record has exactly one direction and the sink of one
 * direction never sees another direction's records (the on-premises→Azure replica must not get
 * failback writes, and the master target must not get the replica's).
 */
export class DirectionEpochs {
  private readonly list: DirectionEpoch[];

  constructor(stored?: DirectionEpoch[]) {
    this.list = stored?.length ? stored.map((e) => ({ ...e })) : [{ startsAfter: 0, direction: "to-azure", masterTargetId: "", masterTargetAddress: "" }];
  }

  get current(): DirectionEpoch {
    return this.list[this.list.length - 1]!;
  }

  all(): readonly DirectionEpoch[] {
    return this.list;
  }

  /** The epoch holding `sequence`. */
  at(sequence: number): DirectionEpoch {
    for (let i = this.list.length - 1; i > 0; i--) if (sequence > this.list[i]!.startsAfter) return this.list[i]!;
    return this.list[0]!;
  }

  /** Last sequence of `epoch` (Infinity for the current one). */
  endOf(epoch: DirectionEpoch): number {
    const next = this.list[this.list.indexOf(epoch) + 1];
    return next ? next.startsAfter : Number.POSITIVE_INFINITY;
  }

  /**
   * Applies an assignment received when `lastSequence` was the newest record. Returns what changed:
   * "direction" opens a new epoch, "address" only moves the current master target.
   */
  assign(route: Omit<DirectionEpoch, "startsAfter">, lastSequence: number): "direction" | "address" | "none" {
    const cur = this.current;
    if (cur.direction === route.direction && cur.masterTargetId === route.masterTargetId) {
      if (cur.masterTargetAddress === route.masterTargetAddress) return "none";
      cur.masterTargetAddress = route.masterTargetAddress;
      return "address";
    }
    const epoch: DirectionEpoch = { startsAfter: lastSequence, ...route };
    // An epoch that received nothing is simply replaced (its offset, if any, was never used).
    if (cur.startsAfter >= lastSequence) this.list[this.list.length - 1] = { ...epoch, startsAfter: cur.startsAfter };
    else this.list.push(epoch);
    return "direction";
  }

  toJSON(): DirectionEpoch[] {
    return this.list.map((e) => ({ ...e }));
  }
}
