import type * as grpc from "@grpc/grpc-js";
import { AUTHORIZATION_HEADER } from "./client.js";

/** The credential presented on a call, if any (common/credentials verifies it). */
export function credentialOf(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get(AUTHORIZATION_HEADER)[0];
  if (typeof value !== "string") return undefined;
  return value.startsWith("Bearer ") ? value.slice(7) : undefined;
}
