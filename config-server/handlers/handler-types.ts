import type * as grpc from "@grpc/grpc-js";
import type { Caller } from "./caller.js";

/** A unary handler once the caller is authenticated and authorized. */
export type UnaryHandler<Req, Res> = (request: Req, caller: Caller) => Res | Promise<Res>;
/** A server-streaming handler once the caller is authenticated and authorized. */
export type StreamHandler<Req, Res> = (request: Req, caller: Caller, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>;

type MethodDefinition = {
  requestDeserialize: (b: Buffer) => unknown;
  responseSerialize: (v: never) => Buffer;
  responseStream: boolean;
};

/** The handler shape of one method of a generated service definition. */
export type HandlerOf<M> = M extends {
  requestDeserialize: (b: Buffer) => infer Req;
  responseSerialize: (v: infer Res) => Buffer;
  responseStream: infer S;
}
  ? S extends true
    ? StreamHandler<Req, Res>
    : UnaryHandler<Req, Res>
  : never;

/** Handlers for every method of a generated service definition (e.g. typeof AdminServiceService). */
export type Handlers<D extends Record<string, MethodDefinition>> = { [K in keyof D]: HandlerOf<D[K]> };
