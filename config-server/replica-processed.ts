import { unaryCall } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import { type ComponentAccess, withProcessServer } from "./component-clients.js";
import type { JobRunner } from "./job-runner.js";
import type { ConfigStore } from "./store/index.js";

export interface ReplicaProcessedOptions {
  store: ConfigStore;
  runner: JobRunner;
  logger: Logger;
  /** How to reach process servers; without it a job only watches the heartbeats. */
  access?: ComponentAccess;
  timeoutMs: number;
}

/**
 * Waits until a machine's replica holds its writes through a sequence (the end of an initial copy
 * or resync). The machine's process server is asked to upload and apply at once (DrainMachine):
 * left alone it would wait out its segment delay and apply pacing, and the job would then learn
 * of it only from the next heartbeat. Its answer carries the processed sequence. When the call
 * fails or falls short, the heartbeats still tell.
 */
export async function waitReplicaProcessed(o: ReplicaProcessedOptions, machineId: string, sequence: number): Promise<void> {
  // One time limit for both ways of waiting.
  const deadline = Date.now() + o.timeoutMs;
  if ((await drainedThrough(o, machineId)) >= sequence) return;
  await o.runner.waitFor(`replica to process sequence ${sequence}`, Math.max(1, deadline - Date.now()), () => {
    const m = o.store.getMachine(machineId);
    return m?.stats && m.stats.processedSequence >= sequence ? true : undefined;
  });
}

async function drainedThrough(o: ReplicaProcessedOptions, machineId: string): Promise<number> {
  const machine = o.store.getMachine(machineId);
  const ps = machine?.processServerId ? o.store.getComponent(machine.processServerId) : undefined;
  if (!o.access || !ps?.address) return 0;
  const access = o.access;
  try {
    const res = await withProcessServer(access, ps.address, (c) => unaryCall(c, c.drainMachine, { machineId, apply: true }, access.credential, o.timeoutMs));
    return res.stats?.processedSequence ?? 0;
  } catch (err) {
    o.logger.warn("could not ask the process server to apply now; waiting for its heartbeats", {
      machineId,
      processServer: ps.name,
      error: (err as Error).message.split("\n")[0],
    });
    return 0;
  }
}
