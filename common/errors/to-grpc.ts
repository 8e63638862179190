import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { toSrlabError } from "./classify.js";
import { ERROR_CODE_METADATA_KEY } from "./from-grpc.js";

/**
 * Turns any error into a gRPC status error for a server callback or stream: the status follows the
 * srlab kind, and the kind itself travels in metadata so the peer can tell e.g. LOW_DISK_SPACE from
 * RESOURCE_EXHAUSTED.
 */
export function toGrpcError(err: unknown): ServiceError {
  const srlab = toSrlabError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, srlab.code);
  return Object.assign(new Error(srlab.message), {
    code: srlab.grpcStatus,
    details: srlab.message,
    metadata,
  });
}
