import type { AdminServiceService, ConfigurationServiceService } from "../../proto/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";

type RecoveryPointHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "reportRecoveryPoint"> &
  Pick<Handlers<typeof AdminServiceService>, "listRecoveryPoints">;

/** Recovery points: reported by the process server that took them, listed for the admin. */
export function recoveryPointHandlers(host: ConfigHost): RecoveryPointHandlers {
  const { store } = host;
  return {
    reportRecoveryPoint: (req) => {
      if (req.recoveryPoint) store.addRecoveryPoint(req.recoveryPoint);
      return {};
    },
    listRecoveryPoints: async (req) => {
      const m = mustGetMachine(store, req.machine);
      // "1 of 2 disks": coverage is against the disks the machine has now (a point keeps removed ones).
      const disks = m.disks.length;
      const recoveryPoints = store.listRecoveryPoints(m.machineId).map((p) => ({ ...p, disksTotal: Math.max(p.disksCovered, disks) }));
      return { recoveryPoints, recoverableRange: await host.failovers.recoverableRange(m.machineId) };
    },
  };
}
