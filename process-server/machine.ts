import { Health, HealthIssueCode, type HealthIssue, type ReplicationPolicy } from "../proto/index.js";
import { DirectionEpochs } from "./direction-epochs.js";
import type { MachineFacts, MachineRegistry, ReplicaDisk } from "./machine-registry.js";
import { Mutex } from "../common/async/index.js";
import { RateMeter } from "../common/metrics/index.js";
import { Watermark } from "../common/async/index.js";
import { ProcessedLag } from "./processed-lag.js";
import type { ReplicaChecksumMap } from "./pipeline/checksum-map.js";

/** A problem one pipeline stage (upload, apply, points) reports until it clears it. */
export interface StageIssue {
  health: Health.HEALTH_WARNING | Health.HEALTH_CRITICAL;
  code: HealthIssueCode;
  message: string;
}

/**
 * One protected machine as the process server sees it: its disks and policy, the uploaded and
 * processed positions, and the issues its pipeline stages report.
 */
export class Machine {
  readonly uploaded: Watermark;
  readonly processed = new Watermark(0);
  /** Serialises validate + append so a batch's gap check sees a stable last sequence. */
  readonly appendLock = new Mutex();
  readonly receivedRate = new RateMeter();
  /** Uploaded but not yet applied: how far the replica trails storage. */
  readonly processedLag = new ProcessedLag();
  /** Which sequences go to the replica and which to a master target (failback). */
  readonly epochs: DirectionEpochs;
  receivedBytesTotal = 0;
  /** Write payload bytes uploaded and handed to the replica since this process started. */
  uploadedBytesTotal = 0;
  processedBytesTotal = 0;
  resyncReason?: string;
  /** The replica checksum map of each disk, kept by the replica sink; resync checksums come from it. */
  readonly checksumMaps = new Map<number, ReplicaChecksumMap>();
  private readonly issues = new Map<string, StageIssue>();
  private readonly saveLock = new Mutex();
  private readonly disks = new Map<number, ReplicaDisk>();
  private policyValue?: ReplicationPolicy;

  constructor(
    facts: MachineFacts,
    private readonly registry: MachineRegistry,
  ) {
    this.id = facts.machineId;
    for (const d of facts.disks) this.disks.set(d.index, d);
    this.policyValue = facts.policy;
    this.uploaded = new Watermark(facts.uploadedSequence);
    this.epochs = new DirectionEpochs(facts.epochs);
  }

  readonly id: string;

  get policy(): ReplicationPolicy | undefined {
    return this.policyValue;
  }

  set policy(policy: ReplicationPolicy | undefined) {
    this.policyValue = policy;
  }

  /** The latest assignment sends this machine's writes to a master target. */
  get failingBack(): boolean {
    return this.epochs.current.direction === "to-on-premises";
  }

  disk(index: number): ReplicaDisk | undefined {
    return this.disks.get(index);
  }

  diskList(): ReplicaDisk[] {
    return [...this.disks.values()].sort((a, b) => a.index - b.index);
  }

  setDisk(disk: ReplicaDisk): void {
    this.disks.set(disk.index, disk);
  }

  facts(): MachineFacts {
    return { machineId: this.id, disks: this.diskList(), policy: this.policyValue, uploadedSequence: this.uploaded.value, epochs: this.epochs.toJSON() };
  }

  /** Persists the current facts; saves are serialised so an older snapshot never wins. */
  save(): Promise<void> {
    return this.saveLock.run(() => this.registry.save(this.facts()));
  }

  setIssue(stage: string, issue: StageIssue | undefined): void {
    if (issue) this.issues.set(stage, issue);
    else this.issues.delete(stage);
  }

  currentIssues(): HealthIssue[] {
    const out: HealthIssue[] = [...this.issues.values()].map((i) => ({ health: i.health, code: i.code, message: i.message }));
    if (this.resyncReason) out.push({ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_RESYNC_REQUIRED, message: this.resyncReason });
    return out;
  }
}

/** The worst health among issues (Normal when there are none). */
export function worstHealth(issues: { health: Health }[]): Health {
  let worst: Health = Health.HEALTH_NORMAL;
  for (const i of issues) if (i.health > worst) worst = i.health;
  return worst;
}
