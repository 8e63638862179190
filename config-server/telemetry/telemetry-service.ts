import type * as grpc from "@grpc/grpc-js";
import { serverStream, unary } from "../../common/grpc/index.js";
import type { Logger } from "../../common/logger.js";
import type { TelemetrySample, TelemetryServiceServer, WatchSamplesResponse } from "../../proto/index.js";
import type { TelemetrySampler } from "./telemetry-sampler.js";

export interface TelemetryServiceContext {
  sampler: TelemetrySampler;
  logger: Logger;
  /** Throws unless the call carries the admin credential (the configuration server decides). */
  requireAdmin: (call: { metadata: grpc.Metadata }) => void;
}

/** The gRPC face of the sampler (proto/srlab/v1/telemetry_service.proto). */
export function telemetryService(ctx: TelemetryServiceContext): TelemetryServiceServer {
  const { sampler, logger } = ctx;
  return {
    getSamples: unary(logger, (req, call) => {
      ctx.requireAdmin(call);
      return { samples: sampler.samples(req.since) };
    }),

    watchSamples: serverStream(logger, async (req, call) => {
      ctx.requireAdmin(call);
      const stream = call as unknown as grpc.ServerWritableStream<unknown, WatchSamplesResponse>;
      for (const sample of req.since ? sampler.samples(req.since) : []) stream.write({ sample });
      await new Promise<void>((resolve) => {
        const onSample = (sample: TelemetrySample) => {
          stream.write({ sample });
        };
        const done = () => {
          sampler.off("sample", onSample);
          resolve();
        };
        sampler.on("sample", onSample);
        call.on("cancelled", done);
        call.on("close", done);
        call.on("error", done);
      });
    }),

    getTelemetrySettings: unary(logger, (_req, call) => {
      ctx.requireAdmin(call);
      return sampler.settings();
    }),
  };
}
