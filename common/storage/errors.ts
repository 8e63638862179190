/**
 * Storage errors, split so callers can pick ASR's retry rule: StorageUnavailableError is
 * recoverable (retry with backoff), everything else needs a person or a different code path.
 */
export interface StorageErrorDetails {
  /** Service error code (e.g. "BlobNotFound") or errno code (e.g. "ECONNREFUSED"). */
  code?: string;
  /** HTTP status, when the error came from a service response. */
  statusCode?: number;
  cause?: unknown;
}

export class StorageError extends Error {
  readonly code?: string;
  readonly statusCode?: number;
  /** True when retrying later can succeed (outage, throttling, network). */
  readonly recoverable: boolean = false;

  constructor(message: string, details: StorageErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "StorageError";
    this.code = details.code;
    this.statusCode = details.statusCode;
  }
}

/** The blob, object, snapshot or container does not exist. */
export class StorageNotFoundError extends StorageError {
  constructor(message: string, details: StorageErrorDetails = {}) {
    super(message, details);
    this.name = "StorageNotFoundError";
  }
}

/** Network failure, refused connection, timeout, throttling or a 5xx: retry with backoff. */
export class StorageUnavailableError extends StorageError {
  override readonly recoverable = true;
  constructor(message: string, details: StorageErrorDetails = {}) {
    super(message, details);
    this.name = "StorageUnavailableError";
  }
}

export function isStorageNotFound(err: unknown): err is StorageNotFoundError {
  return err instanceof StorageNotFoundError;
}

export function isRecoverableStorageError(err: unknown): boolean {
  return err instanceof StorageError && err.recoverable;
}
