import { createHmac, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { AUTHORIZATION_HEADER } from "./client.js";

/**
 * Credentials are "<subject>.<mac>", the MAC keyed by the deployment's credential key. Any holder
 * of the key (configuration server, process servers, master targets) can verify a caller without
 * a round trip to the configuration server.
 */
export function issueCredential(key: Buffer, subject: string): string {
  return `${subject}.${mac(key, subject)}`;
}

export function verifyCredential(key: Buffer, credential: string): string | undefined {
  const dot = credential.lastIndexOf(".");
  if (dot <= 0) return undefined;
  const subject = credential.slice(0, dot);
  const given = Buffer.from(credential.slice(dot + 1));
  const expected = Buffer.from(mac(key, subject));
  return given.length === expected.length && timingSafeEqual(given, expected) ? subject : undefined;
}

function mac(key: Buffer, subject: string): string {
  return createHmac("sha256", key).update(subject).digest("base64url");
}

/** The credential presented on a call, if any. */
export function credentialOf(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get(AUTHORIZATION_HEADER)[0];
  if (typeof value !== "string") return undefined;
  return value.startsWith("Bearer ") ? value.slice(7) : undefined;
}
