import type { ChecksumRequest } from "../common/blockhash/index.js";
import type { BlockChecksum, ReplicateRequest, ReplicateResponse } from "../proto/index.js";

/** One Replicate call: requests go out with flow control, responses come in order. */
export interface ReplicateCall {
  /** Resolves when the transport accepted the message (waits while it pushes back). */
  send(request: ReplicateRequest): Promise<void>;
  /** Ends or throws when the stream does. */
  responses: AsyncIterable<ReplicateResponse>;
  /** Cancels the call; pending send() and the response iteration end. */
  cancel(): void;
}

/** A chunk of a replica disk's block checksums. */
export interface ChecksumChunk {
  checksums: BlockChecksum[];
  totalBlocks: number;
}

/**
 * What the agent needs from its process server. The gRPC implementation is the real one; tests
 * put an in-memory one behind the same interface.
 */
export interface ProcessServerPort {
  replicate(): ReplicateCall;
  blockChecksums(machineId: string, diskIndex: number, request: ChecksumRequest, signal?: AbortSignal): AsyncIterable<ChecksumChunk>;
  close(): void;
}
