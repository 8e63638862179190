import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { credentialOf, verifyCredential } from "../common/grpc/index.js";

/**
 * Only process servers (which stream failback data) and the lab admin may use the master target.
 * Returns the caller's subject. `credentialKey` is undefined until registration has completed.
 */
export function authorize(metadata: grpc.Metadata, credentialKey: Buffer | undefined): string {
  if (!credentialKey) {
    throw new SrlabError(ErrorCode.UNAVAILABLE, "the master target has not registered with the configuration server yet; retry shortly");
  }
  const credential = credentialOf(metadata);
  if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
  const subject = verifyCredential(credentialKey, credential);
  if (!subject) {
    throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "credential not issued by this deployment's configuration server; register again");
  }
  if (subject !== "admin" && !subject.startsWith("process-server/")) {
    throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, `${subject} may not use the master target: only process servers and the admin may`);
  }
  return subject;
}
