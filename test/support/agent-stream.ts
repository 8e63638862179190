import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { bearerMetadata } from "../../common/grpc/index.js";
import type { Disk, ProcessServiceClient, ReplicateRequest, ReplicateResponse, WriteRecord } from "../../proto/index.js";

/**
 * One Replicate stream, as an agent drives it, seen as a sequence of responses in order; the
 * stream's error rejects next(). `disksOf` names the disks an open announces.
 */
export class AgentStream {
  private readonly call: grpc.ClientDuplexStream<ReplicateRequest, ReplicateResponse>;
  private readonly queue: ReplicateResponse[] = [];
  private waiting?: { resolve: (r: ReplicateResponse) => void; reject: (e: unknown) => void };
  private error?: grpc.ServiceError;

  constructor(
    client: ProcessServiceClient,
    credential: string | undefined,
    private readonly disksOf: (machineId: string) => Disk[],
  ) {
    this.call = client.replicate(bearerMetadata(credential));
    this.call.on("data", (r: ReplicateResponse) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w.resolve(r);
      else this.queue.push(r);
    });
    this.call.on("error", (e: grpc.ServiceError) => {
      this.error = e;
      this.waiting?.reject(e);
      this.waiting = undefined;
    });
  }

  next(): Promise<ReplicateResponse> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Opens the stream for the machine; resolves with the durable sequence the server answers. */
  async open(machineId: string): Promise<number> {
    this.call.write({ message: { $case: "open", value: { machineId, disks: this.disksOf(machineId), resync: false } } });
    const r = await this.next();
    assert.equal(r.message?.$case, "opened");
    return r.message.value.durableSequence;
  }

  /** Sends one batch; resolves with the durable sequence of its ack. */
  async send(records: WriteRecord[]): Promise<number> {
    this.call.write({ message: { $case: "batch", value: { records } } });
    const r = await this.next();
    assert.equal(r.message?.$case, "ack");
    return r.message.value.durableSequence;
  }

  write(msg: ReplicateRequest): void {
    this.call.write(msg);
  }

  end(): void {
    this.call.end();
  }
}
