import type * as grpc from "@grpc/grpc-js";
import type { CredentialVerifier } from "../common/credentials/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";

/**
 * Only process servers (which stream failback data), the configuration server and the lab admin
 * may use the master target. Returns the caller's subject. The verifier holds the configuration
 * server's public key once registration has completed, and its revocation list.
 */
export function authorize(metadata: grpc.Metadata, verifier: CredentialVerifier): string {
  if (!verifier.ready) {
    throw new SrlabError(ErrorCode.UNAVAILABLE, "the master target has not registered with the configuration server yet; retry shortly");
  }
  const { claims, subject } = verifier.verify(metadata);
  if (claims.role !== "admin" && claims.role !== "config-server" && claims.role !== "process-server") {
    throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `${subject} may not use the master target: only process servers, the configuration server and the admin may`);
  }
  return subject;
}
