import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { isPromise } from "../common/async/index.js";
import { type ChecksumRequest, DEFAULT_PAGE_SIZE } from "../common/blockhash/index.js";
import { ErrorCode, retryWithBackoff, toSrlabError } from "../common/errors/index.js";
import type { Logger } from "../common/logger.js";
import { type BlockChecksum, ChecksumAlgorithm, type WriteRecord } from "../proto/index.js";
import { blockDifferences } from "./block-differences.js";
import type { Capture } from "./capture.js";
import type { ProcessServerPort } from "./process-server-port.js";

export type SyncMode = "initial" | "resync";

export interface SyncRequest {
  mode: SyncMode;
  blockSize: number;
  /** Disk indexes to copy (a disk added later); all disks when absent or empty. */
  disks?: number[];
}

export interface SyncProgress {
  progressPercent: number;
  bytesSent: number;
}

export interface SyncDeps {
  capture: Capture;
  port: ProcessServerPort;
  machineId: string;
  timeUnitMs: number;
  logger: Logger;
  onProgress?: (p: SyncProgress) => void;
  signal?: AbortSignal;
}

export interface SyncResult {
  mode: SyncMode;
  /** Every block the sync sent is durable at the process server at or below this sequence. */
  endSequence: number;
  blocksCompared: number;
  /** Blocks of which something was queued: DATA for differing pages, ZERO where the source is zero and the replica not. */
  blocksSent: number;
  /** Blocks of which only ZERO records were queued. */
  zeroBlocksSent: number;
  /** Records queued: runs of adjacent differing pages of one kind (a whole block without page digests). */
  rangesSent: number;
  /** Payload bytes of the records sent (ZERO records carry none). */
  bytesSent: number;
}

const DEFAULT_BLOCK = 1024 * 1024;
const PROGRESS_EVERY_MS = 500;
/** Hand the event loop back (NBD clients, the stream) at least this often while comparing. */
const YIELD_EVERY_MS = 20;

/**
 * Initial replication and resync: compare each fixed block of every disk with the replica's
 * checksum and queue the ones that differ as writes with fresh sequence numbers. Reading a block and
 * queueing it happen in one step of the disk (one turn for an image file, one queued operation for
 * a page blob), so a concurrent write to that block simply gets a later number.
 */
export async function runSync(deps: SyncDeps, request: SyncRequest): Promise<SyncResult> {
  const { capture, signal } = deps;
  const blockSize = request.blockSize > 0 ? request.blockSize : DEFAULT_BLOCK;
  // Blocks first, then 4 KiB pages inside the ones that differ; XXH3 since nothing here is a proof.
  const pageSize = blockSize % DEFAULT_PAGE_SIZE === 0 ? DEFAULT_PAGE_SIZE : 0;
  const checksums: ChecksumRequest = { blockSize, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128, pageSize };
  const wanted = request.disks?.length ? new Set(request.disks) : undefined;
  const missing = [...(wanted ?? [])].filter((i) => !capture.disks.some((d) => d.index === i));
  if (missing.length) throw new Error(`no disk ${missing.join(", ")} on this machine (it has ${capture.disks.length})`);
  const disks = capture.disks.filter((d) => !wanted || wanted.has(d.index));
  const totalBytes = disks.reduce((sum, d) => sum + d.backend.size, 0);
  const result: SyncResult = { mode: request.mode, endSequence: 0, blocksCompared: 0, blocksSent: 0, zeroBlocksSent: 0, rangesSent: 0, bytesSent: 0 };
  let doneBytes = 0;
  let lastProgress = 0;
  let lastYield = Date.now();
  let last: WriteRecord | undefined;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastProgress < PROGRESS_EVERY_MS) return;
    lastProgress = now;
    deps.onProgress?.({ progressPercent: totalBytes ? Math.min(100, (doneBytes * 100) / totalBytes) : 100, bytesSent: result.bytesSent });
  };

  // A disk added later starts clean: only a whole-machine copy may clear every bitmap.
  if (!wanted) capture.resetForSync();
  for (const disk of disks) {
    const blocks = Math.ceil(disk.backend.size / blockSize);
    let cursor = 0;
    const handle = async (index: number, replica: BlockChecksum | undefined) => {
      const offset = index * blockSize;
      const length = Math.min(blockSize, disk.backend.size - offset);
      await capture.waitForRoom(length, signal);
      signal?.throwIfAborted();
      if (Date.now() - lastYield >= YIELD_EVERY_MS) {
        await yieldToEventLoop();
        lastYield = Date.now();
      }
      // The block is compared and sequenced in the step that reads it: nothing writes in between.
      const compared = disk.backend.peekThen(offset, length, (data) => {
        signal?.throwIfAborted();
        result.blocksCompared++;
        doneBytes += length;
        const runs = blockDifferences(data, replica, checksums);
        if (runs.length === 0) return;
        result.blocksSent++;
        if (runs.every((r) => r.zero)) result.zeroBlocksSent++;
        for (const run of runs) {
          last = capture.recordBlock(disk.index, offset + run.start, data.subarray(run.start, run.end), run.zero) ?? last;
          result.rangesSent++;
          if (!run.zero) result.bytesSent += run.end - run.start;
        }
      });
      if (isPromise(compared)) await compared;
      report(false);
    };

    const fetchChecksums = async () => {
      try {
        for await (const chunk of deps.port.blockChecksums(deps.machineId, disk.index, checksums, signal)) {
          for (const c of chunk.checksums) await visit(c);
        }
      } catch (err) {
        // No replica yet is an empty replica for an initial copy.
        if (request.mode !== "initial" || toSrlabError(err).code !== ErrorCode.NOT_FOUND) throw err;
      }
    };
    const visit = async (c: BlockChecksum) => {
      const index = c.blockIndex;
      if (index < cursor) return; // already handled before a retried checksum stream broke
      if (index >= blocks) return;
      // Blocks the server did not list are unallocated (zero) on the replica.
      while (cursor < index) await handle(cursor++, undefined);
      await handle(cursor++, c);
    };

    await retryWithBackoff(fetchChecksums, { timeUnitMs: deps.timeUnitMs, signal, logger: deps.logger, operation: "block checksums" });
    while (cursor < blocks) await handle(cursor++, undefined);
  }
  report(true);

  if (last) await capture.whenDurable(last, signal);
  signal?.throwIfAborted();
  result.endSequence = await markBase(capture, disks.map((d) => d.index), signal);
  if (!wanted) capture.syncCompleted();
  deps.logger.info("sync finished", { ...result, disks: disks.map((d) => d.index) });
  report(true);
  return result;
}

/**
 * BASE records for the copied disks, durable at the process server: from them on every write is
 * recoverable one by one. In bitmap mode the order of writes is lost, so the marker waits for
 * data mode (and is inserted again if it was dropped into the bitmap meanwhile).
 */
async function markBase(capture: Capture, indexes: number[], signal?: AbortSignal): Promise<number> {
  if (indexes.length === 0) return capture.ackedSequence;
  for (;;) {
    signal?.throwIfAborted();
    const records = indexes.map((i) => capture.recordBase(i));
    const last = records.at(-1);
    if (!last || records.some((r) => !r)) {
      await capture.changed.wait(signal);
      continue;
    }
    await capture.whenDurable(last, signal);
    signal?.throwIfAborted();
    if (!records.some((r) => r && capture.wasDropped(r))) return last.sequence;
  }
}
