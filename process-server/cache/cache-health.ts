import { statfs } from "node:fs/promises";
import { Health, HealthIssueCode, type HealthIssue } from "../../proto/index.js";

export interface CacheHealthInput {
  dir: string;
  usedBytes: number;
  /** When set, free space is measured against this instead of the cache volume. */
  capacityBytes?: number;
  warningFreePercent: number;
  criticalFreePercent: number;
  aboveHighWater: boolean;
}

export interface CacheHealth {
  health: Health;
  issues: HealthIssue[];
  freePercent: number;
  /** What the free percentage is measured against: the configured capacity or the volume. */
  capacityBytes: number;
}

/** ASR's process-server cache rule: free space Warning below 30 %, Critical below 25 % (configurable). */
export async function measureCacheHealth(input: CacheHealthInput): Promise<CacheHealth> {
  let freePercent: number;
  let capacityBytes = input.capacityBytes ?? 0;
  if (input.capacityBytes) {
    freePercent = (100 * Math.max(0, input.capacityBytes - input.usedBytes)) / input.capacityBytes;
  } else {
    const fs = await statfs(input.dir);
    // As df computes it: blocks reserved for root or held outside this filesystem's reach
    // (shared or thin volumes) are neither used nor free for the cache.
    const usable = fs.blocks - fs.bfree + fs.bavail;
    freePercent = usable > 0 ? (100 * fs.bavail) / usable : 100;
    capacityBytes = usable * fs.bsize;
  }
  const issues: HealthIssue[] = [];
  const shown = freePercent.toFixed(1);
  if (freePercent < input.criticalFreePercent) {
    issues.push({ health: Health.HEALTH_CRITICAL, code: HealthIssueCode.HEALTH_ISSUE_CODE_CACHE_FREE_SPACE_LOW, message: `cache free space ${shown} % is below ${input.criticalFreePercent} %` });
  } else if (freePercent < input.warningFreePercent) {
    issues.push({ health: Health.HEALTH_WARNING, code: HealthIssueCode.HEALTH_ISSUE_CODE_CACHE_FREE_SPACE_LOW, message: `cache free space ${shown} % is below ${input.warningFreePercent} %` });
  }
  if (input.aboveHighWater) {
    issues.push({
      health: Health.HEALTH_WARNING,
      code: HealthIssueCode.HEALTH_ISSUE_CODE_CACHE_HIGH_WATER,
      message: `cache holds ${input.usedBytes} bytes, above its high-water mark: agents are throttled until uploads catch up`,
    });
  }
  const health = issues.reduce<Health>((h, i) => Math.max(h, i.health), Health.HEALTH_NORMAL);
  return { health, issues, freePercent, capacityBytes };
}
