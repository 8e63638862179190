import { ErrorCode } from "./error-codes.js";
import { fromGrpcError, isServiceError } from "./from-grpc.js";
import { SrlabError } from "./srlab-error.js";

// Node (libuv, undici) error codes that are about the environment rather than the request.
const SYSTEM_CODES: Record<string, ErrorCode> = {
  ECONNREFUSED: ErrorCode.NETWORK,
  ECONNRESET: ErrorCode.NETWORK,
  ECONNABORTED: ErrorCode.NETWORK,
  ETIMEDOUT: ErrorCode.NETWORK,
  EPIPE: ErrorCode.NETWORK,
  EHOSTUNREACH: ErrorCode.NETWORK,
  EHOSTDOWN: ErrorCode.NETWORK,
  ENETUNREACH: ErrorCode.NETWORK,
  ENETDOWN: ErrorCode.NETWORK,
  EAI_AGAIN: ErrorCode.NETWORK,
  UND_ERR_SOCKET: ErrorCode.NETWORK,
  UND_ERR_CONNECT_TIMEOUT: ErrorCode.NETWORK,
  UND_ERR_HEADERS_TIMEOUT: ErrorCode.NETWORK,
  UND_ERR_BODY_TIMEOUT: ErrorCode.NETWORK,
  ENOSPC: ErrorCode.LOW_DISK_SPACE,
  EDQUOT: ErrorCode.LOW_DISK_SPACE,
  ENOMEM: ErrorCode.LOW_MEMORY,
  EMFILE: ErrorCode.RESOURCE_EXHAUSTED,
  ENFILE: ErrorCode.RESOURCE_EXHAUSTED,
  ENOENT: ErrorCode.NOT_FOUND,
  EACCES: ErrorCode.AUTHORIZATION_FAILED,
  EPERM: ErrorCode.AUTHORIZATION_FAILED,
};

const MAX_CAUSE_DEPTH = 8;

/**
 * Classifies any thrown value as an SrlabError. Wrapped errors (fetch's "fetch failed", storage SDK
 * errors) are classified by their cause; anything unknown becomes a non-recoverable INTERNAL error.
 */
export function toSrlabError(err: unknown): SrlabError {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
    const classified = classifyOne(current, err);
    if (classified) return classified;
    current = (current as { cause?: unknown }).cause;
  }
  return new SrlabError(ErrorCode.INTERNAL, messageOf(err), { cause: err });
}

/** True when the operation that threw `err` may succeed if retried later. */
export function isRecoverable(err: unknown): boolean {
  return toSrlabError(err).recoverable;
}

function classifyOne(err: unknown, original: unknown): SrlabError | undefined {
  if (err instanceof SrlabError) return err;
  if (typeof err !== "object") return undefined;
  if (isServiceError(err)) return fromGrpcError(err);
  const { code, name, statusCode } = err as { code?: unknown; name?: unknown; statusCode?: unknown };
  if (typeof code === "string" && Object.hasOwn(SYSTEM_CODES, code)) {
    return new SrlabError(SYSTEM_CODES[code]!, messageOf(original), { cause: original });
  }
  // Azure SDK RestError, recognised by shape so common need not depend on the storage SDK.
  if (name === "RestError") {
    const kind = storageKind(typeof statusCode === "number" ? statusCode : undefined, code);
    if (kind) return new SrlabError(kind, messageOf(original), { cause: original });
  }
  return undefined;
}

function storageKind(statusCode: number | undefined, code: unknown): ErrorCode | undefined {
  if (statusCode === undefined) return code === "REQUEST_SEND_ERROR" ? ErrorCode.STORAGE_UNAVAILABLE : undefined;
  if (statusCode === 408 || statusCode === 429 || statusCode >= 500) return ErrorCode.STORAGE_UNAVAILABLE;
  if (statusCode === 401) return ErrorCode.AUTHENTICATION_FAILED;
  if (statusCode === 403) return ErrorCode.AUTHORIZATION_FAILED;
  if (statusCode === 404) return ErrorCode.NOT_FOUND;
  return undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === "string" ? err : String(err);
}
