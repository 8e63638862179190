import { ReplicationDirection, ReplicationState, TagPhase } from "../proto/index.js";
import type { FailbackContext } from "./failback-jobs.js";
import { FAILBACK_POLICY_NAME } from "./store/index.js";

/** How often the app-consistent schedule of the way back looks at the machines. */
const APP_SCHEDULE_TICK_MS = 1_000;

/**
 * The failback policy's app-consistent points on the way back: a tag in the Azure machine's
 * stream every appConsistentFrequencySeconds (the master target snapshots at the tag). Returns
 * the stop function.
 */
export function startFailbackTagSchedule(ctx: Pick<FailbackContext, "store" | "bus" | "logger">): () => void {
  const { store, bus, logger } = ctx;
  const lastTag = new Map<string, number>();
  const timer = setInterval(() => {
    const now = Date.now();
    const policy = store.getPolicy(FAILBACK_POLICY_NAME);
    const every = (policy?.appConsistentFrequencySeconds ?? 0) * 1000;
    for (const m of store.listMachines()) {
      const reverse =
        m.direction === ReplicationDirection.REPLICATION_DIRECTION_AZURE_TO_ON_PREMISES && m.state === ReplicationState.REPLICATION_STATE_PROTECTED;
      if (!reverse || every <= 0) {
        lastTag.delete(m.machineId);
        continue;
      }
      const since = lastTag.get(m.machineId);
      if (since === undefined) {
        lastTag.set(m.machineId, now); // the first tag one period after replication back began
        continue;
      }
      if (now - since < every || !bus.isConnected(m.azureAgentComponentId)) continue;
      lastTag.set(m.machineId, now);
      const tagName = `failback-${new Date(now).toISOString().replace(/[:.]/g, "-")}`;
      bus
        .send(m.azureAgentComponentId, "", {
          $case: "insertTag",
          value: { machineId: m.machineId, tagName, consistencyGroup: "", phase: TagPhase.TAG_PHASE_UNSPECIFIED, holdTimeoutMs: 0 },
        })
        .then((o) => {
          if (!o.success) logger.warn("scheduled app-consistent tag failed", { machine: m.name, error: o.error });
        })
        .catch((err: unknown) => logger.warn("scheduled app-consistent tag failed", { machine: m.name, error: (err as Error).message }));
    }
  }, APP_SCHEDULE_TICK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
