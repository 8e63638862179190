import type * as grpc from "@grpc/grpc-js";
import { MasterTargetServiceClient, ProcessServiceClient } from "../proto/index.js";
import { type ClientTls, channelCredentials, channelOptions } from "../common/grpc/index.js";

/** How the configuration server calls other daemons: TLS with its own certificate, admin credential. */
export interface ComponentAccess {
  tls?: ClientTls;
  credential: string;
}

async function withClient<C extends grpc.Client, T>(client: C, fn: (c: C) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function withProcessServer<T>(access: ComponentAccess, address: string, fn: (c: ProcessServiceClient) => Promise<T>): Promise<T> {
  return withClient(new ProcessServiceClient(address, channelCredentials(access.tls), channelOptions(address)), fn);
}

export function withMasterTarget<T>(access: ComponentAccess, address: string, fn: (c: MasterTargetServiceClient) => Promise<T>): Promise<T> {
  return withClient(new MasterTargetServiceClient(address, channelCredentials(access.tls), channelOptions(address)), fn);
}
