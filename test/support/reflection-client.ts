import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { channelCredentials } from "../../common/grpc/index.js";

const reflectionDir = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection/package.json")), "build", "proto");

/** Lists services through grpc.reflection.v1 as a stock tool (grpcurl list) would. */
export async function listServices(address: string, caFile: string): Promise<string[]> {
  const def = protoLoader.loadSync(join(reflectionDir, "grpc/reflection/v1/reflection.proto"), { includeDirs: [reflectionDir], keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => grpc.Client } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, channelCredentials({ caFile })) as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, { list_services_response?: { service: Array<{ name: string }> } }>;
  };
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on("data", (res) => {
        resolve((res.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
        call.end();
      });
      call.on("error", reject);
      call.write({ list_services: "" });
    });
  } finally {
    client.close();
  }
}
