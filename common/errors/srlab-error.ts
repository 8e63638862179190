import { type ErrorCode, grpcStatusOf, isRecoverableCode } from "./error-codes.js";

export interface SrlabErrorOptions {
  cause?: unknown;
  /** Overrides the code's usual gRPC status, e.g. to keep the status a peer actually sent. */
  grpcStatus?: number;
}

/** An error with an srlab kind: whether to retry it and how to report it over gRPC follow from the code. */
export class SrlabError extends Error {
  override readonly name = "SrlabError";
  readonly code: ErrorCode;
  readonly recoverable: boolean;
  readonly grpcStatus: number;

  constructor(code: ErrorCode, message: string, options: SrlabErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.recoverable = isRecoverableCode(code);
    this.grpcStatus = options.grpcStatus ?? grpcStatusOf(code);
  }
}

export function isSrlabError(err: unknown): err is SrlabError {
  return err instanceof SrlabError;
}
