import type * as grpc from "@grpc/grpc-js";
import type { ConfigurationServiceService, WatchCommandsResponse } from "../../proto/index.js";
import type { Handlers } from "./handler-types.js";
import { componentOf } from "./heartbeat.js";
import type { ConfigHost } from "./host.js";

type CommandHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "watchCommands" | "reportCommandResult">;

/** The command stream of one component, and the results it reports back. */
export function commandHandlers(host: ConfigHost): CommandHandlers {
  return {
    watchCommands: async (_req, caller, call) => {
      const component = componentOf(caller);
      const credentialId = caller.kind === "component" ? caller.claims.jti : "";
      await host.bus.attach(component.componentId, call as unknown as grpc.ServerWritableStream<unknown, WatchCommandsResponse>, credentialId);
    },
    reportCommandResult: (req) => {
      host.bus.complete(req.commandId, req.success, req.error, req.result);
      return {};
    },
  };
}
