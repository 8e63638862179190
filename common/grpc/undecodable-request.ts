import * as grpc from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { findUnsafeInteger, requestTypesByPath } from "./unsafe-integers.js";

/** Stands in for a request message that failed to decode, so the interceptor can answer it. */
class UndecodableRequest {
  constructor(
    readonly bytes: Buffer,
    readonly error: Error,
  ) {}
}

/**
 * A service definition whose request decoders never throw: grpc-js answers a throwing decoder with
 * INTERNAL "Error deserializing request", which tells the caller nothing.
 */
export function tolerateUndecodable(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (err) {
            return new UndecodableRequest(bytes, err as Error);
          }
        },
      },
    ]),
  );
}

/**
 * Answers a request that failed to decode with INVALID_ARGUMENT, naming the 64-bit field whose value
 * is beyond 2^53 when that was the cause (the only decode failure a well-formed message can have).
 */
export function undecodableRequestInterceptor(pkg: PackageDefinition): grpc.ServerInterceptor {
  const requestTypes = requestTypesByPath(pkg);
  return (method, call) => {
    const responder = new grpc.ResponderBuilder()
      .withStart((next) => {
        next(
          new grpc.ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              if (!(message instanceof UndecodableRequest)) {
                nextMessage(message);
                return;
              }
              const type = requestTypes.get(method.path);
              const field = type && findUnsafeInteger(message.bytes, type, pkg);
              intercepting.sendStatus({
                code: grpc.status.INVALID_ARGUMENT,
                details: field
                  ? `${field} is above 2^53 - 1, the largest number this server handles`
                  : `request is not a valid ${method.path} message: ${message.error.message}`,
              });
            })
            .build(),
        );
      })
      .build();
    const intercepting = new grpc.ServerInterceptingCall(call, responder);
    return intercepting;
  };
}
