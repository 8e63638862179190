import { EventEmitter } from "node:events";
import { type FileHandle, open } from "node:fs/promises";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { isMarker } from "../common/replica/index.js";
import { RecoveryPointType, type TargetDisk, type TargetPoint, WriteKind, type WriteRecord } from "../proto/index.js";
import { SerialQueue } from "../common/async/index.js";
import { writeFully, writeJsonAtomic } from "../common/fs/index.js";
import { type BlockIo, type JournalPoint, PointJournal, pointTypeName } from "./point-journal.js";
import { freshWrites } from "./write-validation.js";

/** What survives a restart for one machine: its target images and how far the stream got. */
export interface TargetRecord {
  machineId: string;
  alternateLocation: boolean;
  disks: TargetDisk[];
  /** Highest sequence whose write is fsynced to its image. */
  appliedSequence: number;
  preparedAtMs: number;
  /** Recovery points of the way back, oldest first (their journals live next to the state file). */
  points?: JournalPoint[];
}

/** The failback policy as the process server passes it when it opens the stream. */
export interface PointPolicy {
  crashConsistentMs: number;
  retentionMs: number;
}

export interface ApplyOutcome {
  durableSequence: number;
  records: number;
  bytes: number;
  /** App-consistent points made at the batch's TAG records. */
  points: TargetPoint[];
}

/** Zeros written per pwrite for ZERO records, so a large TRIM never allocates its whole length. */
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/**
 * One machine's failback target. Batches are applied one at a time: pwrite every record, fsync
 * the touched images, then persist the applied sequence — so an acked sequence is always on disk,
 * and a crash between the image fsync and the state write only causes a harmless in-order replay.
 */
export class MachineTarget extends EventEmitter<{ point: [TargetPoint] }> {
  private readonly handles = new Map<number, FileHandle>();
  private readonly queue = new SerialQueue();
  private retired = false;
  private readonly journal: PointJournal;
  private policy: PointPolicy = { crashConsistentMs: 0, retentionMs: 0 };
  private crashTimer?: NodeJS.Timeout;
  /** Highest source sequence a payload applied so far was read at (metadata mode), in stream numbering. */
  private readAtHigh = 0;

  constructor(
    private readonly record: TargetRecord,
    private readonly stateFile: string,
    journalDir: string,
  ) {
    super();
    record.points ??= [];
    this.journal = new PointJournal(journalDir, record.points);
  }

  /** Recovery points of the way back, oldest first. */
  get points(): TargetPoint[] {
    return this.journal.points.map(toTargetPoint);
  }

  /** The stream's policy: crash-consistent points on its cadence, retention of old points. */
  setPolicy(policy: PointPolicy): void {
    const changed = policy.crashConsistentMs !== this.policy.crashConsistentMs;
    this.policy = policy;
    if (!changed) return;
    if (this.crashTimer) clearInterval(this.crashTimer);
    this.crashTimer = undefined;
    if (policy.crashConsistentMs > 0 && !this.retired) {
      this.crashTimer = setInterval(() => {
        this.queue.run(() => this.crashPoint()).catch(() => undefined);
      }, policy.crashConsistentMs);
      this.crashTimer.unref();
    }
  }

  /** Rolls the images back to a point of the way back; later points go. */
  restore(pointId: string): Promise<{ appliedSequence: number; blocks: number }> {
    return this.queue.run(async () => {
      if (this.retired) throw new SrlabError(ErrorCode.WRONG_STATE, `the target of machine ${this.machineId} was prepared again`);
      const { point, blocks } = await this.journal.restore(pointId, this.io());
      for (const handle of this.handles.values()) await handle.datasync();
      this.journal.truncateAfter(point.pointId);
      this.record.appliedSequence = point.sequence;
      await this.save();
      return { appliedSequence: point.sequence, blocks };
    });
  }

  get machineId(): string {
    return this.record.machineId;
  }

  get appliedSequence(): number {
    return this.record.appliedSequence;
  }

  get alternateLocation(): boolean {
    return this.record.alternateLocation;
  }

  get disks(): TargetDisk[] {
    return this.record.disks.map((d) => ({ ...d }));
  }

  disk(index: number): TargetDisk | undefined {
    return this.record.disks.find((d) => d.diskIndex === index);
  }

  async save(): Promise<void> {
    await writeJsonAtomic(this.stateFile, this.record);
  }

  /** Applies the batch's new records and makes them durable; resolves with the new applied sequence. */
  apply(records: WriteRecord[]): Promise<ApplyOutcome> {
    return this.queue.run(async () => {
      if (this.retired) {
        throw new SrlabError(ErrorCode.WRONG_STATE, `the target of machine ${this.machineId} was prepared again; reopen the stream`);
      }
      const fresh = freshWrites(records, (i) => this.disk(i)?.sizeBytes, this.record.appliedSequence);
      if (fresh.length === 0) return { durableSequence: this.record.appliedSequence, records: 0, bytes: 0, points: [] };
      const touched = new Set<FileHandle>();
      const points: TargetPoint[] = [];
      let bytes = 0;
      let run: WriteRecord[] = [];
      // An app-consistent point sits exactly after everything before its TAG.
      for (const r of fresh) {
        if (r.readAtSequence > this.readAtHigh) this.readAtHigh = r.readAtSequence;
        if (r.kind === WriteKind.WRITE_KIND_BASE) continue; // a copy completed on the way out: nothing to write here
        if (r.kind !== WriteKind.WRITE_KIND_TAG) {
          run.push(r);
          continue;
        }
        bytes += await this.write(run, touched);
        run = [];
        points.push(await this.makePoint(RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT, r.sequence, r.tagName, r.consistencyGroup, touched));
      }
      bytes += await this.write(run, touched);
      for (const handle of touched) await handle.datasync();
      this.record.appliedSequence = fresh[fresh.length - 1]!.sequence;
      await this.save();
      return { durableSequence: this.record.appliedSequence, records: fresh.length, bytes, points };
    });
  }

  /** Writes a run of DATA/ZERO records, after journaling the blocks the newest point still needs. */
  private async write(run: WriteRecord[], touched: Set<FileHandle>): Promise<number> {
    const writes = run.filter((r) => !isMarker(r) && r.length > 0);
    if (writes.length === 0) return 0;
    await this.journal.preserve(writes, this.io());
    let bytes = 0;
    for (const r of writes) {
      const handle = await this.handle(r.diskIndex);
      if (r.kind === WriteKind.WRITE_KIND_DATA) await writeFully(handle, r.data, r.offset);
      else await writeZeros(handle, r.offset, r.length);
      touched.add(handle);
      bytes += r.length;
    }
    return bytes;
  }

  /** The images as they are now become a point: made durable and listed. */
  private async makePoint(type: RecoveryPointType, sequence: number, tagName: string, consistencyGroup: string, touched: Set<FileHandle>): Promise<TargetPoint> {
    for (const handle of touched) await handle.datasync();
    touched.clear();
    const now = Date.now();
    const point: JournalPoint = {
      pointId: `${this.machineId}-failback-${this.record.preparedAtMs}-${pointTypeName(type)}-${String(sequence).padStart(20, "0")}`,
      sequence,
      type,
      tagName,
      consistencyGroup,
      timeMs: now,
      ...(this.readAtHigh > sequence ? { metadataMode: true } : {}),
    };
    this.journal.add(point);
    if (this.policy.retentionMs > 0) this.journal.prune(now - this.policy.retentionMs);
    this.record.appliedSequence = sequence;
    await this.save();
    return toTargetPoint(point);
  }

  /** On the policy's cadence: a crash-consistent point when anything was applied since the last one. */
  private async crashPoint(): Promise<void> {
    if (this.retired) return;
    const applied = this.record.appliedSequence;
    if (applied === 0 || applied <= (this.journal.newest?.sequence ?? 0)) return;
    // Not the answer to any batch: announced to the open stream, if any (and listed at every open).
    this.emit("point", await this.makePoint(RecoveryPointType.RECOVERY_POINT_TYPE_CRASH_CONSISTENT, applied, "", "", new Set(this.handles.values())));
  }

  private io(): BlockIo {
    return {
      read: async (diskIndex, offset, length) => {
        const handle = await this.handle(diskIndex);
        const data = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(data, done, length - done, offset + done);
          if (bytesRead === 0) break; // past the end of a sparse image: zeros
          done += bytesRead;
        }
        return data;
      },
      write: async (diskIndex, offset, data) => writeFully(await this.handle(diskIndex), data, offset),
      size: (diskIndex) => this.disk(diskIndex)?.sizeBytes ?? 0,
    };
  }

  /** Waits for the batch in progress, then refuses further batches and closes the images. */
  retire(options: { dropPoints?: boolean } = {}): Promise<void> {
    if (this.crashTimer) clearInterval(this.crashTimer);
    this.crashTimer = undefined;
    return this.queue.run(async () => {
      this.retired = true;
      if (options.dropPoints) this.journal.clear();
      await this.closeHandles();
    });
  }

  private async handle(diskIndex: number): Promise<FileHandle> {
    let handle = this.handles.get(diskIndex);
    if (!handle) {
      handle = await open(this.disk(diskIndex)!.imagePath, "r+");
      this.handles.set(diskIndex, handle);
    }
    return handle;
  }

  private async closeHandles(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.allSettled(handles.map((h) => h.close()));
  }
}

function toTargetPoint(p: JournalPoint): TargetPoint {
  return {
    pointId: p.pointId,
    sequence: p.sequence,
    type: p.type,
    tagName: p.tagName,
    time: new Date(p.timeMs),
    consistencyGroup: p.consistencyGroup,
    metadataMode: p.metadataMode === true,
  };
}

async function writeZeros(handle: FileHandle, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const n = Math.min(ZERO_CHUNK.length, length - done);
    await writeFully(handle, ZERO_CHUNK.subarray(0, n), offset + done);
    done += n;
  }
}
