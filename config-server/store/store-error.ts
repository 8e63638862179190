import { status } from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";

// Store failures are SrlabErrors so protocol handlers can hand them to toGrpcError unchanged.

/** Raised by open() when the database was written by a newer (or diverged) srlab build. */
export class SchemaVersionError extends SrlabError {
  constructor(
    message: string,
    readonly databaseVersion: number,
    readonly supportedVersion: number,
  ) {
    super(ErrorCode.WRONG_STATE, message);
  }
}

export function notFound(what: string, id: string): SrlabError {
  const code = what === "machine" ? ErrorCode.MACHINE_NOT_FOUND : ErrorCode.NOT_FOUND;
  return new SrlabError(code, `${what} "${id}" does not exist`);
}

export function invalid(message: string): SrlabError {
  return new SrlabError(ErrorCode.INVALID_ARGUMENT, message);
}

export function alreadyExists(message: string): SrlabError {
  return new SrlabError(ErrorCode.INVALID_ARGUMENT, message, { grpcStatus: status.ALREADY_EXISTS });
}

/** The request is valid but the current state forbids it (FAILED_PRECONDITION). */
export function wrongState(message: string): SrlabError {
  return new SrlabError(ErrorCode.WRONG_STATE, message);
}

export function storeClosed(): SrlabError {
  return new SrlabError(ErrorCode.UNAVAILABLE, "the configuration store is closed");
}
