import { type FileHandle, open } from "node:fs/promises";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { isMarker } from "../common/replica/index.js";
import { type TargetDisk, WriteKind, type WriteRecord } from "../proto/index.js";
import { SerialQueue } from "../common/async/index.js";
import { writeFully, writeJsonAtomic } from "../common/fs/index.js";
import { freshWrites } from "./write-validation.js";

/** What survives a restart for one machine: its target images and how far the stream got. */
export interface TargetRecord {
  machineId: string;
  alternateLocation: boolean;
  disks: TargetDisk[];
  /** Highest sequence whose write is fsynced to its image. */
  appliedSequence: number;
  preparedAtMs: number;
}

export interface ApplyOutcome {
  durableSequence: number;
  records: number;
  bytes: number;
}

/** Zeros written per pwrite for ZERO records, so a large TRIM never allocates its whole length. */
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/**
 * One machine's failback target. Batches are applied one at a time: pwrite every record, fsync
 * the touched images, then persist the applied sequence — so an acked sequence is always on disk,
 * and a crash between the image fsync and the state write only causes a harmless in-order replay.
 */
export class MachineTarget {
  private readonly handles = new Map<number, FileHandle>();
  private readonly queue = new SerialQueue();
  private retired = false;

  constructor(
    private readonly record: TargetRecord,
    private readonly stateFile: string,
  ) {}

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
      if (fresh.length === 0) return { durableSequence: this.record.appliedSequence, records: 0, bytes: 0 };
      const touched = new Set<FileHandle>();
      let bytes = 0;
      for (const r of fresh) {
        if (isMarker(r) || r.length === 0) continue;
        const handle = await this.handle(r.diskIndex);
        if (r.kind === WriteKind.WRITE_KIND_DATA) await writeFully(handle, r.data, r.offset);
        else await writeZeros(handle, r.offset, r.length);
        touched.add(handle);
        bytes += r.length;
      }
      for (const handle of touched) await handle.datasync();
      this.record.appliedSequence = fresh[fresh.length - 1]!.sequence;
      await this.save();
      return { durableSequence: this.record.appliedSequence, records: fresh.length, bytes };
    });
  }

  /** Waits for the batch in progress, then refuses further batches and closes the images. */
  retire(): Promise<void> {
    return this.queue.run(async () => {
      this.retired = true;
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

async function writeZeros(handle: FileHandle, offset: number, length: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const n = Math.min(ZERO_CHUNK.length, length - done);
    await writeFully(handle, ZERO_CHUNK.subarray(0, n), offset + done);
    done += n;
  }
}
