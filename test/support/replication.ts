import { waitUntil } from "./wait.js";

export interface ReplicationView {
  rpoSeconds: number;
  pendingBytes: number;
  capturedSequence: number;
  receivedSequence: number;
  processedSequence: number;
}

/** Everything the agent captured is in storage and applied (forward) or on the master target (failback). */
export function isCaughtUp(m: ReplicationView): boolean {
  return (
    m.rpoSeconds === 0 &&
    m.pendingBytes === 0 &&
    m.capturedSequence > 0 &&
    m.receivedSequence === m.capturedSequence &&
    m.processedSequence === m.capturedSequence
  );
}

/**
 * Waits until `status()` shows the machine caught up. It first lets one report interval pass
 * (the lab reports every second) so the status reflects writes made just before the call.
 */
export async function waitCaughtUp<M extends ReplicationView>(status: () => Promise<M>, timeoutMs = 180_000): Promise<M> {
  await new Promise((r) => setTimeout(r, 1_500));
  return waitUntil("the machine to catch up", async () => {
    const m = await status();
    return isCaughtUp(m) ? m : undefined;
  }, timeoutMs, 300);
}
