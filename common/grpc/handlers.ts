import type { EventEmitter } from "node:events";
import type * as grpc from "@grpc/grpc-js";
import { toGrpcError } from "../errors/index.js";
import type { Logger } from "../logger.js";

/**
 * Adapts an async function to a grpc-js unary handler. Every thrown error becomes a gRPC status
 * with a message a person can act on; nothing escapes to crash the daemon.
 */
export function unary<Req, Res>(
  logger: Logger,
  fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          const status = toGrpcError(err);
          logger.debug("call failed", { path: call.getPath(), code: status.code, error: status.details });
          callback(status, null);
        },
      );
  };
}

/** Same for server-streaming handlers: errors end the stream with a status. */
export function serverStream<Req, Res>(
  logger: Logger,
  fn: (request: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    fn(call.request, call).then(
      () => call.end(),
      (err: unknown) => failStream(call, err, logger),
    );
  };
}

/**
 * Ends a streaming call with the error's gRPC status. grpc-js sends a streaming call's status only
 * on its 'error' event; destroy() ends it without one and leaves the client waiting.
 */
export function failStream(call: EventEmitter & { getPath(): string }, err: unknown, logger: Logger): void {
  const status = toGrpcError(err);
  logger.debug("stream failed", { path: call.getPath(), code: status.code, error: status.details });
  call.emit("error", Object.assign(new Error(status.details), status));
}
