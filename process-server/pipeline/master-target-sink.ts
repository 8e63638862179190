import type * as grpc from "@grpc/grpc-js";
import type { ChecksumRequest } from "../../common/blockhash/index.js";
import { ErrorCode, retrySchedule, SrlabError, toSrlabError } from "../../common/errors/index.js";
import { bearerMetadata, channelCredentials, channelOptions, type TlsFiles } from "../../common/grpc/index.js";
import type { Logger } from "../../common/logger.js";
import {
  type ApplyWritesRequest,
  type ApplyWritesResponse,
  Health,
  HealthIssueCode,
  MasterTargetServiceClient,
  type MasterTargetServiceGetBlockChecksumsResponse,
  type RecoveryPoint,
  ReplicationDirection,
  type TargetPoint,
  type WriteRecord,
} from "../../proto/index.js";
import type { ApplySink } from "./apply-sink.js";
import type { DirectionEpoch } from "../direction-epochs.js";
import type { Machine } from "../machine.js";
import type { ProcessServerMetrics } from "../metrics.js";
import { recordBytes } from "../../common/wire/index.js";
import { Wake } from "../../common/async/index.js";

/** Records per ApplyWrites batch, and raw bytes per batch (a larger single record travels alone). */
const BATCH_RECORDS = 512;
const BATCH_BYTES = 1024 * 1024;
/** Unacknowledged bytes in flight; beyond it apply() waits (the records are safe in storage). */
const WINDOW_BYTES = 16 * 1024 * 1024;
const ISSUE_STAGE = "master-target";

export interface MasterTargetSinkOptions {
  machine: Machine;
  /** The failback epoch this sink serves; its address and target offset are updated in place. */
  epoch: DirectionEpoch;
  /** The process server's own credential (the master target accepts `process-server/<id>`). */
  credential: () => string;
  tls: TlsFiles | undefined;
  retryTimeUnitMs: number;
  logger: Logger;
  metrics: ProcessServerMetrics;
  /** The processed position moved; persist it (in the background). */
  onProcessed: () => void;
  /** Persists the machine's facts (the epoch's target offset). */
  saveFacts: () => Promise<void>;
  /** A recovery point the master target made (or listed when the stream opened): report it to the CS. */
  onPoint: (point: RecoveryPoint) => void;
}

/**
 * The failback sink: streams a machine's writes, in sequence order, to the on-premises master
 * target over ApplyWrites, and moves "processed" to what the master target acknowledged as
 * fsynced. Everything not yet acknowledged stays in memory (and in the storage segments), so a
 * master target that goes away costs nothing: the stream reopens with backoff and resends what
 * the target does not report as durable. Recovery points of this direction are the master
 * target's (snapshots of the images it writes, on the failback policy's cadence and at TAGs); the
 * sink passes the policy when it opens the stream and relays the points, in our numbering.
 */
export class MasterTargetSink implements ApplySink {
  private readonly abort = new AbortController();
  /** Notified when acks free window room. */
  private readonly room = new Wake();
  /** Cuts a reconnect wait short (new address, stop). */
  private readonly kick = new Wake();
  private client?: MasterTargetServiceClient;
  private clientAddress = "";
  private loop?: Promise<void>;
  private call?: grpc.ClientDuplexStream<ApplyWritesRequest, ApplyWritesResponse>;
  /** The current stream is open and resumed: batches may go out. */
  private streaming = false;
  /** Delivered and not yet acknowledged, in sequence order. */
  private pending: WriteRecord[] = [];
  private pendingBytes = 0;
  /** Highest sequence delivered to the sink, and highest written on the current stream. */
  private given = 0;
  private sentUpTo = 0;
  private retargeted = false;

  constructor(private readonly o: MasterTargetSinkOptions) {}

  get address(): string {
    return this.o.epoch.masterTargetAddress;
  }

  async apply(records: WriteRecord[]): Promise<void> {
    this.loop ??= this.run();
    for (const r of records) {
      if (r.sequence <= Math.max(this.given, this.o.machine.processed.value)) continue;
      this.pending.push(r);
      this.pendingBytes += recordBytes(r);
      this.given = r.sequence;
    }
    this.send();
    const signal = this.abort.signal;
    while (this.pendingBytes > WINDOW_BYTES && !signal.aborted) await this.room.wait(signal);
    signal.throwIfAborted();
  }

  async settle(signal: AbortSignal): Promise<void> {
    await this.o.machine.processed.waitFor(this.given, signal);
  }

  async skipTo(sequence: number): Promise<void> {
    const { machine, epoch } = this.o;
    // Keep the target's numbering gapless: the next record follows its last acknowledged one.
    if (epoch.targetOffset !== undefined) {
      epoch.targetOffset += sequence - machine.processed.value;
      await this.o.saveFacts();
    }
    machine.processed.advance(sequence);
    this.given = Math.max(this.given, sequence);
    this.sentUpTo = Math.max(this.sentUpTo, sequence);
  }

  /** The master target's address changed (same target): reconnect there at once. */
  retarget(): void {
    if (!this.client || this.clientAddress === this.address) return;
    this.retargeted = true;
    this.call?.cancel();
    this.kick.notify();
  }

  async close(): Promise<void> {
    this.abort.abort(new Error("process server stopping"));
    this.call?.cancel();
    await this.loop;
    this.client?.close();
    this.o.machine.setIssue(ISSUE_STAGE, undefined);
  }

  /** The master target's checksums of one disk, relayed as they arrive. */
  async *checksums(diskIndex: number, request: ChecksumRequest, signal: AbortSignal): AsyncGenerator<MasterTargetServiceGetBlockChecksumsResponse> {
    const call = this.connect().getBlockChecksums(
      { machineId: this.o.machine.id, diskIndex, ...request },
      bearerMetadata(this.o.credential()),
    );
    const onAbort = () => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const message of call) yield message as MasterTargetServiceGetBlockChecksumsResponse;
    } finally {
      signal.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  private connect(): MasterTargetServiceClient {
    const address = this.address;
    if (!this.client || this.clientAddress !== address) {
      this.client?.close();
      this.client = new MasterTargetServiceClient(address, channelCredentials(this.o.tls), channelOptions(address));
      this.clientAddress = address;
    }
    return this.client;
  }

  private async run(): Promise<void> {
    const { machine, logger, metrics } = this.o;
    const signal = this.abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        await this.session(signal, () => {
          attempt = 0;
          machine.setIssue(ISSUE_STAGE, undefined);
        });
      } catch (err) {
        if (signal.aborted) return;
        if (this.retargeted) {
          this.retargeted = false;
          continue;
        }
        attempt++;
        const e = toSrlabError(err);
        const delayMs = retrySchedule(attempt, this.o.retryTimeUnitMs);
        const retry = `retrying in ${Math.round(delayMs / 100) / 10} s`;
        // Unreachable is the expected outage (recoverable); a refusal needs an administrator.
        machine.setIssue(
          ISSUE_STAGE,
          e.recoverable
            ? { health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_MASTER_TARGET_UNREACHABLE, message: `master target unreachable (${this.address}): ${e.message}; ${retry}` }
            : { health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_MASTER_TARGET_FAILED, message: `master target ${this.address} refused the failback stream: ${e.message}; ${retry}` },
        );
        metrics.masterTargetReconnects.inc({ machine_id: machine.id });
        logger.warn("failback stream to the master target failed", { machineId: machine.id, address: this.address, code: e.code, error: e.message, attempt });
        await this.kick.wait(signal, delayMs);
        this.retargeted = false;
      }
    }
  }

  /** One ApplyWrites stream: open, resume after what the target holds, then send as records come. */
  private async session(signal: AbortSignal, onOpen: () => void): Promise<void> {
    const { machine } = this.o;
    const call = this.connect().applyWrites(bearerMetadata(this.o.credential()));
    this.call = call;
    const onAbort = () => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    let first: ((durable: number) => void) | undefined;
    const opened = new Promise<number>((resolve) => (first = resolve));
    const ended = new Promise<never>((_, reject) => {
      call.on("error", reject);
      call.on("end", () => reject(new SrlabError(ErrorCode.UNAVAILABLE, "the master target ended the ApplyWrites stream")));
    });
    ended.catch(() => undefined);
    let listed: TargetPoint[] = [];
    call.on("data", (r: ApplyWritesResponse) => {
      if (first) {
        const f = first;
        first = undefined;
        listed = r.points;
        f(r.durableSequence);
      } else {
        this.relay(r.points);
        this.acked(r.durableSequence + (this.o.epoch.targetOffset ?? 0));
      }
    });
    try {
      const policy = machine.policy;
      call.write({
        message: {
          $case: "open",
          value: {
            machineId: machine.id,
            crashConsistentFrequencySeconds: policy?.crashConsistentFrequencySeconds ?? 0,
            retentionSeconds: policy?.recoveryPointRetentionSeconds ?? 0,
          },
        },
      });
      await this.resumeAt(await Promise.race([opened, ended]));
      this.relay(listed);
      this.streaming = true;
      onOpen();
      this.send();
      await ended;
    } finally {
      this.streaming = false;
      this.call = undefined;
      signal.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  /** Reports the target's points in our numbering (the CS takes repeats as one point). */
  private relay(points: TargetPoint[]): void {
    const offset = this.o.epoch.targetOffset;
    if (offset === undefined) return;
    const { machine } = this.o;
    const disks = machine.diskList().length;
    for (const p of points) {
      this.o.onPoint({
        recoveryPointId: p.pointId,
        machineId: machine.id,
        time: p.time,
        sequence: p.sequence + offset,
        type: p.type,
        tagName: p.tagName,
        disksCovered: disks,
        disksTotal: disks,
        processed: true,
        consistencyGroup: p.consistencyGroup,
        metadataMode: p.metadataMode,
        direction: ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES,
      });
    }
  }

  /** Maps the target's durable sequence onto ours and drops what it already holds. */
  private async resumeAt(targetSequence: number): Promise<void> {
    const { machine, epoch, logger } = this.o;
    if (epoch.targetOffset === undefined) {
      // First contact in this epoch: the target's position stands for our processed position.
      epoch.targetOffset = machine.processed.value - targetSequence;
      await this.o.saveFacts();
      logger.info("failback stream mapped onto the master target", { machineId: machine.id, sequence: machine.processed.value, targetSequence });
    }
    let durable = targetSequence + epoch.targetOffset;
    if (durable < machine.processed.value || durable > machine.uploaded.value) {
      // The target does not hold what it acknowledged (prepared again, restored): continue from
      // our position; only a checksum resync can repair the image now.
      machine.resyncReason = `master target ${this.address} reports sequence ${targetSequence}, which does not match what it acknowledged; resync the machine`;
      logger.error("master target lost its position; resync required", { machineId: machine.id, targetSequence, processed: machine.processed.value });
      epoch.targetOffset = machine.processed.value - targetSequence;
      await this.o.saveFacts();
      durable = machine.processed.value;
    }
    this.acked(durable);
    this.sentUpTo = durable;
  }

  private acked(durable: number): void {
    const { machine, metrics } = this.o;
    let dropped = 0;
    while (this.pending.length > 0 && this.pending[0]!.sequence <= durable) {
      this.pendingBytes -= recordBytes(this.pending.shift()!);
      dropped++;
    }
    if (dropped) metrics.appliedRecords.inc({ machine_id: machine.id }, dropped);
    if (durable > machine.processed.value) {
      machine.processed.advance(durable);
      this.o.onProcessed();
    }
    this.room.notify();
  }

  /** Writes every pending record the current stream has not carried yet, in batches. */
  private send(): void {
    const call = this.call;
    const offset = this.o.epoch.targetOffset;
    if (!call || !this.streaming || offset === undefined || this.pending.length === 0) return;
    // pending is contiguous, so the first unsent record is found by arithmetic.
    let i = Math.max(0, this.sentUpTo - this.pending[0]!.sequence + 1);
    while (i < this.pending.length) {
      const records: WriteRecord[] = [];
      let bytes = 0;
      for (; i < this.pending.length && records.length < BATCH_RECORDS && (records.length === 0 || bytes < BATCH_BYTES); i++) {
        const r = this.pending[i]!;
        records.push({ ...r, sequence: r.sequence - offset, readAtSequence: r.readAtSequence > offset ? r.readAtSequence - offset : 0 });
        bytes += recordBytes(r);
      }
      call.write({ message: { $case: "batch", value: { records } } });
      this.sentUpTo = this.pending[i - 1]!.sequence;
    }
  }
}
