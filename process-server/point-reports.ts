import type { CsLink } from "../common/cs-link/index.js";
import { retryWithBackoff } from "../common/errors/index.js";
import { unaryCall } from "../common/grpc/index.js";
import type { Logger } from "../common/logger.js";
import type { RecoveryPoint } from "../proto/index.js";

export interface PointReportOptions {
  retryTimeUnitMs: number;
  /** Aborted when the server stops: the retries end quietly. */
  signal: AbortSignal;
  logger: Logger;
}

/** Reports a point to the CS in the background, retrying with backoff; the CS treats repeats as one point. */
export function reportPoint(link: CsLink, point: RecoveryPoint, options: PointReportOptions): void {
  const { signal, logger } = options;
  retryWithBackoff(() => unaryCall(link.client, link.client.reportRecoveryPoint, { recoveryPoint: point }, link.credential), {
    timeUnitMs: options.retryTimeUnitMs,
    signal,
    logger,
    operation: `report of recovery point ${point.recoveryPointId}`,
  }).catch((err: unknown) => {
    if (!signal.aborted) logger.error("recovery point not reported", { pointId: point.recoveryPointId, error: (err as Error).message });
  });
}
