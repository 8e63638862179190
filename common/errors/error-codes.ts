import { status } from "@grpc/grpc-js";

/**
 * srlab's error kinds (DESIGN.md §1 "Retry"). Non-recoverable kinds need an administrator and turn an
 * item Critical; recoverable kinds are retried with backoff.
 */
export const ErrorCode = {
  // non-recoverable
  AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
  AUTHORIZATION_FAILED: "AUTHORIZATION_FAILED",
  INVALID_REPLICA_STATE: "INVALID_REPLICA_STATE",
  DISK_NOT_FOUND: "DISK_NOT_FOUND",
  MACHINE_NOT_FOUND: "MACHINE_NOT_FOUND",
  BROKEN_CHAIN: "BROKEN_CHAIN",
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  OUT_OF_RANGE: "OUT_OF_RANGE",
  WRONG_STATE: "WRONG_STATE",
  NOT_FOUND: "NOT_FOUND",
  /** Anything unclassified (a bug, an unexpected reply): safer to surface than to retry forever. */
  INTERNAL: "INTERNAL",
  // recoverable
  NETWORK: "NETWORK",
  LOW_DISK_SPACE: "LOW_DISK_SPACE",
  LOW_MEMORY: "LOW_MEMORY",
  STORAGE_UNAVAILABLE: "STORAGE_UNAVAILABLE",
  RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
  UNAVAILABLE: "UNAVAILABLE",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

interface CodeTraits {
  recoverable: boolean;
  grpcStatus: status;
}

const TRAITS: Record<ErrorCode, CodeTraits> = {
  AUTHENTICATION_FAILED: { recoverable: false, grpcStatus: status.UNAUTHENTICATED },
  AUTHORIZATION_FAILED: { recoverable: false, grpcStatus: status.PERMISSION_DENIED },
  INVALID_REPLICA_STATE: { recoverable: false, grpcStatus: status.FAILED_PRECONDITION },
  DISK_NOT_FOUND: { recoverable: false, grpcStatus: status.NOT_FOUND },
  MACHINE_NOT_FOUND: { recoverable: false, grpcStatus: status.NOT_FOUND },
  // A gap in the write sequence is a state problem fixed by resync, not a missing resource.
  BROKEN_CHAIN: { recoverable: false, grpcStatus: status.FAILED_PRECONDITION },
  INVALID_ARGUMENT: { recoverable: false, grpcStatus: status.INVALID_ARGUMENT },
  OUT_OF_RANGE: { recoverable: false, grpcStatus: status.OUT_OF_RANGE },
  WRONG_STATE: { recoverable: false, grpcStatus: status.FAILED_PRECONDITION },
  NOT_FOUND: { recoverable: false, grpcStatus: status.NOT_FOUND },
  INTERNAL: { recoverable: false, grpcStatus: status.INTERNAL },
  NETWORK: { recoverable: true, grpcStatus: status.UNAVAILABLE },
  LOW_DISK_SPACE: { recoverable: true, grpcStatus: status.RESOURCE_EXHAUSTED },
  LOW_MEMORY: { recoverable: true, grpcStatus: status.RESOURCE_EXHAUSTED },
  STORAGE_UNAVAILABLE: { recoverable: true, grpcStatus: status.UNAVAILABLE },
  RESOURCE_EXHAUSTED: { recoverable: true, grpcStatus: status.RESOURCE_EXHAUSTED },
  UNAVAILABLE: { recoverable: true, grpcStatus: status.UNAVAILABLE },
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(TRAITS, value);
}

export function isRecoverableCode(code: ErrorCode): boolean {
  return TRAITS[code].recoverable;
}

export function grpcStatusOf(code: ErrorCode): status {
  return TRAITS[code].grpcStatus;
}
