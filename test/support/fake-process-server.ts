import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { blockDigest, type ChecksumRequest, pageDigests } from "../../common/blockhash/index.js";
import { silentLogger } from "../../common/logger.js";
import { type ChecksumChunk, type LocalMachine, type ProcessServerPort, type ReplicateCall, ReplicationClient } from "../../mobility-agent/index.js";
import {
  type BlockChecksum,
  type MachineAssignment,
  type ReplicateRequest,
  type ReplicateResponse,
  WriteKind,
  type WriteRecord,
} from "../../proto/index.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** An assignment of machine m1 to the fake process server. */
export const ASSIGNMENT: MachineAssignment = {
  machineId: "m1",
  processServerId: "ps1",
  processServerAddress: "fake:1",
  policy: undefined,
  state: 0,
  direction: 0,
  masterTargetId: "",
  masterTargetAddress: "",
};

export function grpcError(code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() });
}

/** Responses of a fake Replicate call, consumed by the client as an async iterable. */
export class ResponseQueue implements AsyncIterable<ReplicateResponse> {
  private items: ReplicateResponse[] = [];
  private failure?: Error;
  private ended = false;
  private wake?: () => void;

  push(r: ReplicateResponse): void {
    this.items.push(r);
    this.wake?.();
  }
  fail(err: Error): void {
    this.failure ??= err;
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<ReplicateResponse> {
    for (;;) {
      if (this.items.length) {
        yield this.items.shift()!;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }
}

/**
 * An in-memory process server with the contract's sequence rules (exactly last+1, held numbers
 * skipped, a gap is FAILED_PRECONDITION) and replica disks the received records are applied to.
 */
export class FakeProcessServer implements ProcessServerPort {
  durable = 0;
  received: WriteRecord[] = [];
  reachable = true;
  autoAck = true;
  failBatchesWith?: ServiceError;
  opens: boolean[] = [];
  readonly replicas: Buffer[];
  checksumOverride?: Map<number, BlockChecksum[]>;
  /** Runs between checksum chunks (one chunk per block when set): a writer racing the compare. */
  betweenChunks?: () => void;
  private current: ResponseQueue[] = [];

  /** Replica disks: empty ones of these sizes, or copies of these images. */
  constructor(disks: Array<number | Buffer>) {
    this.replicas = disks.map((d) => (typeof d === "number" ? Buffer.alloc(d) : Buffer.from(d)));
  }

  replicate(): ReplicateCall {
    const out = new ResponseQueue();
    this.current.push(out);
    if (!this.reachable) out.fail(grpcError(status.UNAVAILABLE, "connect ECONNREFUSED"));
    return {
      send: async (req: ReplicateRequest) => {
        if (!this.reachable) throw grpcError(status.UNAVAILABLE, "connect ECONNREFUSED");
        const m = req.message;
        if (m?.$case === "open") {
          this.opens.push(m.value.resync);
          out.push({ message: { $case: "opened", value: { durableSequence: this.durable, processServerId: "ps1" } } });
        } else if (m?.$case === "batch") {
          if (this.failBatchesWith) return out.fail(this.failBatchesWith);
          for (const r of m.value.records) {
            if (r.sequence <= this.durable) continue;
            if (r.sequence !== this.durable + 1) {
              return out.fail(grpcError(status.FAILED_PRECONDITION, `sequence gap: expected ${this.durable + 1}, got ${r.sequence}`));
            }
            this.apply(r);
          }
          if (this.autoAck) out.push({ message: { $case: "ack", value: { durableSequence: this.durable, throttled: false, cacheHealth: 1 } } });
        }
      },
      responses: out,
      cancel: () => out.end(),
    };
  }

  /** Acknowledges everything received so far on the open streams (for autoAck = false). */
  ackNow(): void {
    for (const q of this.current) q.push({ message: { $case: "ack", value: { durableSequence: this.durable, throttled: false, cacheHealth: 1 } } });
  }

  /** Drops every open stream as a network failure would. */
  disconnect(): void {
    for (const q of this.current) q.fail(grpcError(status.UNAVAILABLE, "connection reset"));
    this.current = [];
  }

  /** Computes digests with the same module the real servers use, for whatever the agent asks. */
  async *blockChecksums(_machineId: string, diskIndex: number, request: ChecksumRequest): AsyncIterable<ChecksumChunk> {
    const { blockSize, algorithm, pageSize } = request;
    const override = this.checksumOverride?.get(diskIndex);
    const replica = this.replicas[diskIndex]!;
    const total = Math.ceil(replica.length / blockSize);
    if (override) {
      yield { checksums: override, totalBlocks: total };
      return;
    }
    const checksums: BlockChecksum[] = [];
    for (let i = 0; i < total; i++) {
      const block = replica.subarray(i * blockSize, Math.min(replica.length, (i + 1) * blockSize));
      const digest = blockDigest(algorithm, block);
      const checksum = { blockIndex: i, digest, pageDigests: pageSize && digest.length ? pageDigests(algorithm, block, pageSize) : Buffer.alloc(0) };
      if (this.betweenChunks) {
        this.betweenChunks();
        await new Promise((r) => setImmediate(r));
        yield { checksums: [checksum], totalBlocks: total };
      } else if (digest.length) {
        checksums.push(checksum);
      }
    }
    if (!this.betweenChunks) yield { checksums, totalBlocks: total };
  }

  close(): void {}

  private apply(r: WriteRecord): void {
    this.received.push({ ...r, data: Buffer.from(r.data) });
    this.durable = r.sequence;
    const replica = this.replicas[r.diskIndex]!;
    if (r.kind === WriteKind.WRITE_KIND_DATA) r.data.copy(replica, r.offset);
    if (r.kind === WriteKind.WRITE_KIND_ZERO) replica.fill(0, r.offset, r.offset + r.length);
  }
}

export function replicationFor(machine: LocalMachine, ps: FakeProcessServer, options: { bitmapAfterRetries?: number } = {}): ReplicationClient {
  return new ReplicationClient({
    capture: machine.capture,
    machineId: "m1",
    disks: [],
    connect: () => ps,
    batchBytes: 256 * KiB,
    windowBytes: 1 * MiB,
    bitmapAfterRetries: options.bitmapAfterRetries ?? 3,
    timeUnitMs: 5,
    logger: silentLogger(),
  });
}

export async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

