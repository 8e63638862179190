import type * as grpc from "@grpc/grpc-js";
import type { ChecksumRequest } from "../common/blockhash/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { bearerMetadata, type ClientTls, channelCredentials, channelOptions } from "../common/grpc/index.js";
import { serializeReplicateRequest } from "../common/wire/index.js";
import { ProcessServiceClient, ProcessServiceService, type ReplicateRequest, type ReplicateResponse } from "../proto/index.js";
import type { ChecksumChunk, ProcessServerPort, ReplicateCall } from "./process-server-port.js";

/** The process server over gRPC (TLS with the lab CA, the agent's credential as bearer metadata). */
export class GrpcProcessServer implements ProcessServerPort {
  private readonly client: ProcessServiceClient;
  private readonly credential: () => string;

  constructor(
    readonly address: string,
    tls: ClientTls | undefined,
    credential: string | (() => string),
  ) {
    // A getter: after a rotation, new streams carry the new credential.
    this.credential = typeof credential === "string" ? () => credential : credential;
    this.client = new ProcessServiceClient(address, channelCredentials(tls), channelOptions(address));
  }

  replicate(): ReplicateCall {
    // The generated serializer copies each multi-MiB batch several times; this one copies once.
    const method = ProcessServiceService.replicate;
    const openedWith = this.credential();
    const stream = this.client.makeBidiStreamRequest<ReplicateRequest, ReplicateResponse>(
      method.path,
      serializeReplicateRequest,
      method.responseDeserialize,
      bearerMetadata(openedWith),
    );
    // The process server cuts a stream whose credential was revoked. After a rotation that is this
    // agent's previous credential: reconnect with the new one instead of halting.
    const replaced = (err: Error): Error =>
      (err as grpc.ServiceError).code === 16 && this.credential() !== openedWith
        ? new SrlabError(ErrorCode.UNAVAILABLE, "the stream's credential was replaced (rotation); reopening with the new one")
        : err;
    let failure: Error | undefined;
    stream.on("error", (err: Error) => {
      failure ??= replaced(err);
    });
    return {
      send: (request: ReplicateRequest) => writeWithBackpressure(stream, request, () => failure),
      responses: responsesOf(stream, () => failure, replaced),
      cancel: () => stream.cancel(),
    };
  }

  async *blockChecksums(machineId: string, diskIndex: number, request: ChecksumRequest, signal?: AbortSignal): AsyncIterable<ChecksumChunk> {
    const call = this.client.getBlockChecksums({ machineId, diskIndex, ...request }, bearerMetadata(this.credential()));
    const onAbort = () => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const chunk of call) {
        yield { checksums: chunk.checksums, totalBlocks: chunk.totalBlocks };
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  close(): void {
    this.client.close();
  }
}

function writeWithBackpressure(
  stream: grpc.ClientDuplexStream<ReplicateRequest, ReplicateResponse>,
  request: ReplicateRequest,
  failed: () => Error | undefined,
): Promise<void> {
  const early = failed();
  if (early) return Promise.reject(early);
  if (stream.write(request)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off("drain", onDrain);
      stream.off("error", onError);
      stream.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(failed() ?? new Error("replication stream closed"));
    stream.on("drain", onDrain);
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

async function* responsesOf(
  stream: grpc.ClientDuplexStream<ReplicateRequest, ReplicateResponse>,
  failed: () => Error | undefined,
  translate: (err: Error) => Error,
): AsyncIterable<ReplicateResponse> {
  try {
    for await (const message of stream) yield message as ReplicateResponse;
  } catch (err) {
    throw translate(err as Error);
  }
  const err = failed();
  if (err) throw err;
}
