import type { Machine } from "../proto/index.js";
import { ErrorCode, SrlabError } from "../common/errors/index.js";
import { circuitConflict, ipInCidr } from "./network-rules.js";
import type { ConfigStore } from "./store/index.js";

/** Network, subnet and IP the failed-over machine gets; refuses what seed 000 forbids. */
export function failoverPlacement(store: ConfigStore, machine: Machine, requested: string, test: boolean): { network: string; ip: string } {
  const mapping = machine.networkMapping;
  const production = mapping?.network ?? "";
  const networkName = requested || (test ? "" : production);
  if (test) {
    if (!requested) {
      throw new SrlabError(
        ErrorCode.INVALID_ARGUMENT,
        `test failover needs --network: an isolated network${production ? ` other than the production network ${production}` : ""}`,
      );
    }
    if (requested === production) {
      throw new SrlabError(
        ErrorCode.INVALID_ARGUMENT,
        `test failover into the production network ${production} is refused: use an isolated network so the test machine cannot disturb production`,
      );
    }
  }
  if (!networkName) return { network: "", ip: "" };
  const network = store.getNetwork(networkName);
  if (!network) throw new SrlabError(ErrorCode.NOT_FOUND, `no network named ${networkName} (create it with srlab network create)`);
  const conflict = circuitConflict(network, store.listNetworks());
  if (conflict) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, conflict);
  let ip = "";
  if (mapping && networkName === production) ip = mapping.keepSourceIp ? mapping.sourceIpAddress : mapping.ipAddress;
  if (ip && !network.addressSpaces.some((cidr) => ipInCidr(ip, cidr))) {
    throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `IP ${ip} is outside the address space of network ${networkName} (${network.addressSpaces.join(", ")})`);
  }
  return { network: networkName, ip };
}
