import type * as grpc from "@grpc/grpc-js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { credentialOf, verifyCredential } from "../common/grpc/index.js";

/** Admin-only services (plans, groups, proofs): the caller must hold the lab's admin credential. */
export function requireAdmin(credentialKey: Buffer, call: { metadata: grpc.Metadata }): void {
  const credential = credentialOf(call.metadata);
  if (!credential) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "missing credential: send 'authorization: Bearer <credential>'");
  const subject = verifyCredential(credentialKey, credential);
  if (!subject) throw new SrlabError(ErrorCode.AUTHENTICATION_FAILED, "credential not issued by this configuration server; register again");
  if (subject !== "admin") throw new SrlabError(ErrorCode.AUTHORIZATION_FAILED, "this call needs the lab's admin credential");
}
