import type { AdminServiceService } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { circuitConflict, ipInCidr, validateNetwork } from "../network-rules.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";
import { machineView } from "./views.js";

type NetworkHandlers = Pick<Handlers<typeof AdminServiceService>, "createNetwork" | "listNetworks" | "setNetworkMapping">;

/** Recovery networks and each machine's network mapping. */
export function networkHandlers(host: ConfigHost): NetworkHandlers {
  const { store } = host;
  return {
    createNetwork: (req) => {
      if (!req.network) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "network is required");
      validateNetwork(req.network);
      const conflict = circuitConflict(req.network, store.listNetworks());
      if (conflict) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, conflict);
      return { network: store.upsertNetwork(req.network) };
    },
    listNetworks: () => ({ networks: store.listNetworks() }),
    setNetworkMapping: (req) => {
      const m = mustGetMachine(store, req.machine);
      const mapping = req.mapping;
      if (!mapping?.network) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a network mapping needs a target network");
      const network = store.getNetwork(mapping.network);
      if (!network) throw new SrlabError(ErrorCode.NOT_FOUND, `no network named ${mapping.network} (create it with srlab network create)`);
      if (mapping.subnet && !network.subnets.includes(mapping.subnet)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `network ${network.name} has no subnet ${mapping.subnet} (it has ${network.subnets.join(", ") || "none"})`);
      }
      const ip = mapping.keepSourceIp ? mapping.sourceIpAddress : mapping.ipAddress;
      if (ip && !network.addressSpaces.some((cidr) => ipInCidr(ip, cidr))) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `IP ${ip} is outside network ${network.name} (${network.addressSpaces.join(", ")})`);
      }
      if (ip && mapping.subnet && !ipInCidr(ip, mapping.subnet)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `IP ${ip} is outside subnet ${mapping.subnet}`);
      }
      return { machine: machineView(host, store.updateMachine(m.machineId, { networkMapping: mapping })) };
    },
  };
}
