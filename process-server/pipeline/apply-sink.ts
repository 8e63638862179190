import type { WriteRecord } from "../../proto/index.js";

/**
 * Where the applier delivers one direction's uploaded writes: the replica page blobs
 * (on-premises → Azure) or a master target (failback). The sink moves the machine's processed
 * position itself, when its target holds the writes.
 */
export interface ApplySink {
  /** Delivers contiguous records following everything delivered before; may return before they are processed. */
  apply(records: WriteRecord[]): Promise<void>;
  /** Resolves once everything delivered is processed. */
  settle(signal: AbortSignal): Promise<void>;
  /** The log has a hole up to `sequence` (the machine needs a resync): continue after it. */
  skipTo(sequence: number): Promise<void>;
  close(): Promise<void>;
}
