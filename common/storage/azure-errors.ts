import { RestError } from "@azure/storage-blob";
import { StorageError, StorageNotFoundError, StorageUnavailableError } from "./errors.js";

// Errno-style codes the HTTP stack reports when it never got a response.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "REQUEST_SEND_ERROR",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

// Service codes that mean "try again later" even without a 5xx.
const BUSY_CODES = new Set(["ServerBusy", "OperationTimedOut", "InternalError"]);

function errnoCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur && typeof cur === "object"; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Maps whatever the Azure SDK threw onto srlab's storage errors; `what` names the operation and blob. */
export function mapAzureError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  // Service messages carry "RequestId:…" / "Time:…" lines; keep the first line for humans.
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
  if (err instanceof RestError || (err && typeof err === "object" && "statusCode" in err)) {
    const rest = err as { statusCode?: number; code?: string; details?: { errorCode?: string } };
    const statusCode = rest.statusCode;
    const code = rest.details?.errorCode ?? rest.code;
    const details = { code, statusCode, cause: err };
    if (statusCode === 404) return new StorageNotFoundError(`${what}: not found (${code ?? 404})`, details);
    if (statusCode === undefined || statusCode === 0) {
      // No response at all: the request never reached the service.
      return new StorageUnavailableError(`${what}: storage unreachable: ${message}`, { ...details, code: errnoCode(err) ?? code });
    }
    if (statusCode >= 500 || statusCode === 408 || statusCode === 429 || (code !== undefined && BUSY_CODES.has(code))) {
      return new StorageUnavailableError(`${what}: storage unavailable (${statusCode} ${code ?? ""}): ${message}`, details);
    }
    return new StorageError(`${what}: ${statusCode} ${code ?? ""}: ${message}`, details);
  }
  const netCode = errnoCode(err);
  if (netCode) return new StorageUnavailableError(`${what}: storage unreachable (${netCode}): ${message}`, { code: netCode, cause: err });
  if (err instanceof Error && err.name === "AbortError") {
    return new StorageUnavailableError(`${what}: request timed out or was aborted: ${message}`, { code: "AbortError", cause: err });
  }
  return new StorageError(`${what}: ${message}`, { cause: err });
}
