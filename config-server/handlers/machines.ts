import type { AdminServiceService } from "../../proto/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";
import { componentView, machineView, machineViews } from "./views.js";

type MachineHandlers = Pick<Handlers<typeof AdminServiceService>, "listComponents" | "listMachines" | "getMachine">;

/** The deployment's components and machines as srlab status shows them. */
export function machineHandlers(host: ConfigHost): MachineHandlers {
  const { store } = host;
  return {
    listComponents: () => ({ components: store.listComponents().map((c) => componentView(host, c)) }),
    // One read for all machines: status stays fast with many of them.
    listMachines: () => ({ machines: machineViews(host) }),
    getMachine: (req) => ({ machine: machineView(host, mustGetMachine(store, req.machine)) }),
  };
}
