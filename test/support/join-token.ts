import { joinTokenRoles } from "../../common/enum-names/index.js";
import { channelCredentials, unaryCall } from "../../common/grpc/index.js";
import type { ConfigServer } from "../../config-server/index.js";
import { IdentityServiceClient } from "../../proto/index.js";

/** A join token from an in-process configuration server (without TLS), as `srlab token create` makes one. */
export async function joinToken(server: ConfigServer, role: "agent" | "process-server" | "master-target", o: { ttlSeconds?: number; reusable?: boolean } = {}): Promise<string> {
  const client = new IdentityServiceClient(server.grpcAddress, channelCredentials(undefined));
  try {
    const r = await unaryCall(client, client.createJoinToken, { role: joinTokenRoles.parse(role), ttlSeconds: o.ttlSeconds ?? 600, reusable: Boolean(o.reusable), description: "test" }, server.adminCredential);
    return r.token;
  } finally {
    client.close();
  }
}
