import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { ErrorCode, isErrorCode } from "./error-codes.js";
import { SrlabError } from "./srlab-error.js";

/** Metadata key carrying the srlab error kind, so a peer recovers the exact kind, not just the status. */
export const ERROR_CODE_METADATA_KEY = "srlab-error-code";

// Used when a peer (or grpc-js itself) sent no srlab kind: derive one from the status alone.
const BY_STATUS: Partial<Record<status, ErrorCode>> = {
  [status.UNAVAILABLE]: ErrorCode.UNAVAILABLE,
  [status.DEADLINE_EXCEEDED]: ErrorCode.NETWORK,
  [status.RESOURCE_EXHAUSTED]: ErrorCode.RESOURCE_EXHAUSTED,
  // gRPC defines ABORTED as "retry the whole operation", which is what a retry loop does.
  [status.ABORTED]: ErrorCode.UNAVAILABLE,
  [status.UNAUTHENTICATED]: ErrorCode.AUTHENTICATION_FAILED,
  [status.PERMISSION_DENIED]: ErrorCode.AUTHORIZATION_FAILED,
  [status.INVALID_ARGUMENT]: ErrorCode.INVALID_ARGUMENT,
  [status.OUT_OF_RANGE]: ErrorCode.OUT_OF_RANGE,
  [status.FAILED_PRECONDITION]: ErrorCode.WRONG_STATE,
  [status.ALREADY_EXISTS]: ErrorCode.WRONG_STATE,
  [status.NOT_FOUND]: ErrorCode.NOT_FOUND,
};

/** Whether `err` looks like a grpc-js status error (numeric status code). */
export function isServiceError(err: unknown): err is ServiceError {
  if (typeof err !== "object" || err === null) return false;
  const { code, details, metadata } = err as Partial<ServiceError>;
  return (
    typeof code === "number" &&
    Number.isInteger(code) &&
    code >= 0 &&
    code <= 16 &&
    (typeof details === "string" || metadata instanceof Metadata)
  );
}

/** Turns a status received from a gRPC peer into an SrlabError, keeping the peer's status code. */
export function fromGrpcError(err: Pick<ServiceError, "code"> & Partial<Pick<ServiceError, "details" | "metadata" | "message">>): SrlabError {
  const sent = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  const code = isErrorCode(sent) ? sent : (BY_STATUS[err.code] ?? ErrorCode.INTERNAL);
  const message = err.details || err.message || `gRPC status ${status[err.code] ?? err.code}`;
  return new SrlabError(code, message, { cause: err, grpcStatus: err.code });
}
