import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { bearerMetadata } from "../../common/grpc/index.js";
import { seededInts } from "../../common/random/index.js";
import {
  type ApplyWritesRequest,
  type ApplyWritesResponse,
  type BlockChecksum,
  ChecksumAlgorithm,
  type MasterTargetServiceClient,
  type MasterTargetServiceGetBlockChecksumsResponse,
  WriteKind,
  type WriteRecord,
} from "../../proto/index.js";
import { patternBytes } from "./images.js";

// What the master-target tests drive it with: an ApplyWrites stream, reference disks, generated
// writes and the checksums to compare.

/** One ApplyWrites stream, answers read in order. */
export class ApplyStream {
  private readonly call: grpc.ClientDuplexStream<ApplyWritesRequest, ApplyWritesResponse>;
  private readonly answers: ApplyWritesResponse[] = [];
  private readonly waiters: Array<{ resolve: (r: ApplyWritesResponse) => void; reject: (e: Error) => void }> = [];
  private failure?: grpc.ServiceError;

  constructor(client: MasterTargetServiceClient, credential: string) {
    this.call = client.applyWrites(bearerMetadata(credential));
    this.call.on("data", (r: ApplyWritesResponse) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(r);
      else this.answers.push(r);
    });
    this.call.on("error", (err: grpc.ServiceError) => {
      this.failure = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    });
  }

  async open(machineId: string): Promise<number> {
    this.call.write({ message: { $case: "open", value: { machineId, crashConsistentFrequencySeconds: 0, retentionSeconds: 0 } } });
    return (await this.next()).durableSequence;
  }

  async send(records: WriteRecord[]): Promise<number> {
    this.call.write({ message: { $case: "batch", value: { records } } });
    return (await this.next()).durableSequence;
  }

  next(): Promise<ApplyWritesResponse> {
    const ready = this.answers.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

/** A machine's disks as plain buffers: the reference every image is compared with. */
export class ReferenceDisks {
  readonly disks = new Map<number, Buffer>();
  sequence = 0;

  constructor(sizes: Record<number, number>, initial?: Record<number, Buffer>) {
    for (const [index, size] of Object.entries(sizes)) this.disks.set(Number(index), initial?.[Number(index)] ? Buffer.from(initial[Number(index)]!) : Buffer.alloc(size));
  }

  apply(r: WriteRecord): void {
    if (r.kind === WriteKind.WRITE_KIND_DATA) Buffer.from(r.data).copy(this.disks.get(r.diskIndex)!, r.offset);
    if (r.kind === WriteKind.WRITE_KIND_ZERO) this.disks.get(r.diskIndex)!.fill(0, r.offset, r.offset + r.length);
    this.sequence = r.sequence;
  }

  sha(index: number): string {
    return createHash("sha256").update(this.disks.get(index)!).digest("hex");
  }
}

/** Random DATA / ZERO / TAG records continuing after `from`, deterministic per seed. */
export function randomWrites(count: number, from: number, sizes: Record<number, number>, seed: number): WriteRecord[] {
  const rand = seededInts(seed);
  const indexes = Object.keys(sizes).map(Number);
  const records: WriteRecord[] = [];
  for (let i = 0; i < count; i++) {
    const sequence = from + i + 1;
    const diskIndex = indexes[rand(indexes.length)]!;
    const size = sizes[diskIndex]!;
    const pick = rand(20);
    const base = { sequence, diskIndex, tagName: "", consistencyGroup: "", capturedAtMs: Date.now(), readAtSequence: 0 };
    if (pick === 0) {
      records.push({ ...base, kind: WriteKind.WRITE_KIND_TAG, offset: 0, length: 0, data: Buffer.alloc(0), tagName: `tag-${sequence}` });
      continue;
    }
    const length = 512 * (1 + rand(64));
    const offset = 512 * rand((size - length) / 512 + 1);
    if (pick < 4) records.push({ ...base, kind: WriteKind.WRITE_KIND_ZERO, offset, length, data: Buffer.alloc(0) });
    else records.push({ ...base, kind: WriteKind.WRITE_KIND_DATA, offset, length, data: patternBytes(length, seed * 100_000 + sequence) });
  }
  return records;
}

export function referenceChecksums(image: Buffer, blockSize: number): BlockChecksum[] {
  const out: BlockChecksum[] = [];
  for (let offset = 0, index = 0; offset < image.length; offset += blockSize, index++) {
    const block = image.subarray(offset, Math.min(offset + blockSize, image.length));
    const digest = block.every((b) => b === 0) ? Buffer.alloc(0) : createHash("sha256").update(block).digest();
    out.push({ blockIndex: index, digest, pageDigests: Buffer.alloc(0) });
  }
  return out;
}

/** One line per block, so a mismatch shows which block without a huge structural diff. */
export function digest(checksums: BlockChecksum[]): string {
  return checksums.map((c) => `${c.blockIndex}:${Buffer.from(c.digest).toString("hex") || "zero"}`).join("\n");
}

export function getChecksums(client: MasterTargetServiceClient, credential: string, machineId: string, diskIndex: number, blockSize: number) {
  return new Promise<MasterTargetServiceGetBlockChecksumsResponse[]>((resolve, reject) => {
    const messages: MasterTargetServiceGetBlockChecksumsResponse[] = [];
    const call = client.getBlockChecksums({ machineId, diskIndex, blockSize, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_UNSPECIFIED, pageSize: 0 }, bearerMetadata(credential));
    call.on("data", (m: MasterTargetServiceGetBlockChecksumsResponse) => messages.push(m));
    call.on("error", reject);
    call.on("end", () => resolve(messages));
  });
}

export function record(sequence: number, diskIndex: number, offset: number, data: Buffer): WriteRecord {
  return {
    sequence,
    kind: WriteKind.WRITE_KIND_DATA,
    diskIndex,
    offset,
    length: data.length,
    data,
    tagName: "",
    consistencyGroup: "",
    capturedAtMs: 0,
    readAtSequence: 0,
  };
}

export async function rejectsWith(promise: Promise<unknown>, code: grpc.status, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `expected status ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
    assert.match(err.details, message);
    return true;
  });
}
