import { sleep } from "../../common/async/index.js";
import { ErrorCode, isRecoverable, retrySchedule, retryWithBackoff, SrlabError } from "../../common/errors/index.js";
import type { Logger } from "../../common/logger.js";
import { isRecoverableStorageError } from "../../common/storage/index.js";
import { Health, HealthIssueCode } from "../../proto/index.js";
import type { BlobStore } from "../../common/storage/index.js";
import type { Machine } from "../machine.js";
import { StorageWatch } from "./storage-watch.js";

/** The pipeline stages that write to storage, and the code of each one's unrecoverable failure. */
const FAILED_CODE = {
  upload: HealthIssueCode.HEALTH_ISSUE_CODE_UPLOAD_FAILED,
  apply: HealthIssueCode.HEALTH_ISSUE_CODE_APPLY_FAILED,
  points: HealthIssueCode.HEALTH_ISSUE_CODE_POINTS_FAILED,
} as const;

export type StorageStage = keyof typeof FAILED_CODE;

export interface StorageRetryOptions {
  machine: Machine;
  /** Pipeline stage reporting the issue. */
  stage: StorageStage;
  operation: string;
  timeUnitMs: number;
  signal: AbortSignal;
  logger: Logger;
  onFailure?: () => void;
  /** The store the operation uses: its watch probes for its return during an outage. */
  store?: BlobStore;
}

/**
 * Runs a storage operation until it succeeds: recoverable failures follow ASR's backoff with a
 * Warning on the machine; anything else is Critical (an administrator must act) but is retried at
 * the slow steady rate too, because giving up would strand acknowledged writes in the cache.
 */
export async function withStorageRetry<T>(fn: () => Promise<T>, o: StorageRetryOptions): Promise<T> {
  const watch = o.store ? StorageWatch.of(o.store) : undefined;
  for (let round = 0; ; round++) {
    try {
      const result = await retryWithBackoff(
        async () => {
          try {
            const result = await fn();
            watch?.reportSuccess();
            return result;
          } catch (err) {
            if (isRecoverableStorageError(err)) watch?.reportFailure(err);
            // The storage layer marks outages itself; make sure the shared classifier agrees.
            if (isRecoverableStorageError(err) && !isRecoverable(err)) {
              throw new SrlabError(ErrorCode.STORAGE_UNAVAILABLE, (err as Error).message, { cause: err });
            }
            throw err;
          }
        },
        {
          timeUnitMs: o.timeUnitMs,
          signal: o.signal,
          operation: o.operation,
          logger: o.logger,
          // The probe notices storage coming back long before a 30-unit backoff would.
          wakeEarly: watch ? () => watch.whenBack() : undefined,
          onRetry: (attempt, delayMs, err) => {
            o.onFailure?.();
            o.machine.setIssue(o.stage, {
              health: Health.HEALTH_WARNING,
              code: HealthIssueCode.HEALTH_ISSUE_CODE_STORAGE_UNAVAILABLE,
              message: `${o.operation} failed (attempt ${attempt}, retrying in ${Math.round(delayMs / 1000)} s): ${messageOf(err)}`,
            });
          },
        },
      );
      o.machine.setIssue(o.stage, undefined);
      return result;
    } catch (err) {
      o.signal.throwIfAborted();
      o.onFailure?.();
      o.machine.setIssue(o.stage, {
        health: Health.HEALTH_CRITICAL,
        code: FAILED_CODE[o.stage],
        message: `${o.operation} failed and needs attention: ${messageOf(err)}`,
      });
      await sleep(retrySchedule(6 + round, o.timeUnitMs), o.signal);
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
