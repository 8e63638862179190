import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { channelCredentials, channelOptions } from "../../common/grpc/index.js";

type HealthClient = grpc.Client & {
  check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void;
};

const HealthClientCtor = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, "Health") as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => HealthClient;

/** grpc.health.v1.Health/Check over TLS with the lab CA; resolves with the status name. */
export function checkHealth(address: string, caFile: string | undefined, service = "", timeoutMs = 3_000): Promise<string> {
  const client = new HealthClientCtor(address, channelCredentials(caFile ? { caFile } : undefined), channelOptions(address));
  return new Promise<string>((resolve, reject) => {
    client.check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(String(res.status));
    });
  });
}
